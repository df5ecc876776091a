{{/*
Shared helpers. The per-service templates range over .Values.services and
call these with a dict: (dict "root" $ "name" <service> "svc" <service values>).
*/}}

{{/* The services this chart knows, in a fixed order. */}}
{{- define "onex-fleet.knownServices" -}}
registration-orchestrator reducer projector-effect consul-effect
{{- end }}

{{- define "onex-fleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-onex-fleet, or just <release> when it already contains the chart name. */}}
{{- define "onex-fleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "onex-fleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of one service's objects: <fullname>-<service>, at most 52 chars so the
"-metrics"/"-grpc" suffixes stay within the 63 of a Service name. The
fullname is shortened, never the service, so the names stay distinct.
*/}}
{{- define "onex-fleet.serviceName" -}}
{{- $prefix := include "onex-fleet.fullname" .root | trunc (int (sub 51 (len .name))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix .name }}
{{- end }}

{{- define "onex-fleet.commonLabels" -}}
helm.sh/chart: {{ include "onex-fleet.chart" . }}
app.kubernetes.io/part-of: onex-fleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- end }}

{{/* Selector labels of one service: stable across upgrades. */}}
{{- define "onex-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "onex-fleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "onex-fleet.labels" -}}
{{ include "onex-fleet.commonLabels" .root }}
{{ include "onex-fleet.selectorLabels" . }}
{{- end }}

{{- define "onex-fleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "onex-fleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "onex-fleet.image" -}}
{{- $root := .root }}
{{- if .svc.image }}
{{- .svc.image }}
{{- else }}
{{- printf "%s/%s:%s" $root.Values.image.repository .name (default $root.Chart.AppVersion $root.Values.image.tag) }}
{{- end }}
{{- end }}

{{/* ONEX_DRAIN_TIMEOUT of one service, checked against the runtime's 1..300. */}}
{{- define "onex-fleet.drainTimeout" -}}
{{- $d := .root.Values.drainTimeoutSeconds }}
{{- if and (hasKey .svc "drainTimeoutSeconds") (not (kindIs "invalid" .svc.drainTimeoutSeconds)) }}{{ $d = .svc.drainTimeoutSeconds }}{{ end }}
{{- $d = int $d }}
{{- if or (lt $d 1) (gt $d 300) }}
{{- fail (printf "drainTimeoutSeconds of %s must be within 1..300 (ONEX_DRAIN_TIMEOUT), got %d" .name $d) }}
{{- end }}
{{- $d }}
{{- end }}

{{/* Plain env names that must never carry a literal value. */}}
{{- define "onex-fleet.secretNamePattern" -}}
(^|_)(SECRET|PASSWORD|PASSWD|TOKEN|DB_URL|DSN|CLIENT_ID|PRIVATE_KEY|API_KEY)$
{{- end }}

{{/* NAME: value entries of a map as EnvVars, refusing secret-looking names. */}}
{{- define "onex-fleet.plainEnv" -}}
{{- $where := .where }}
{{- range $k, $v := .env }}
{{- if regexMatch (include "onex-fleet.secretNamePattern" $) (upper $k) }}
{{- fail (printf "%s.%s looks like a secret: the chart holds no secret values; use extraEnv with valueFrom.secretKeyRef (or Infisical)" $where $k) }}
{{- end }}
{{- if not (regexMatch "^[A-Za-z_][A-Za-z0-9_]*$" $k) }}
{{- fail (printf "%s.%s is not a valid environment variable name" $where $k) }}
{{- end }}
- name: {{ $k }}
  value: {{ toString $v | quote }}
{{- end }}
{{- end }}

{{/*
Transport security of one service (values `security`, docs/security.md), as
YAML {env: [EnvVar], files: [{volume, secret, dir, items}]}: the variables
the service gets and the Secrets mounted read-only at dir (/etc/onex/tls/
<volume>), each Secret entry items[].key under the fixed file name
items[].path. Kafka goes to every service, PostgreSQL and gRPC to
projector-effect, Consul to consul-effect. The defaults give empty lists.

Credentials are secretKeyRefs only. The checks repeat the schema's rules in
words, for a render with --skip-schema-validation; they run for every
service, so a setting of a disabled service is still checked.
*/}}
{{- define "onex-fleet.security" -}}
{{- $name := .name }}
{{- $svc := .svc }}
{{- $sec := .root.Values.security | default dict }}
{{- $env := list }}
{{- $files := list }}
{{- $tlsRoot := "/etc/onex/tls" }}

{{- /* Kafka: every service. */}}
{{- $k := $sec.kafka | default dict }}
{{- $proto := $k.securityProtocol | default "PLAINTEXT" }}
{{- $mech := $k.saslMechanism | default "" }}
{{- $external := eq ($k.credentialsSource | default "secret") "external" }}
{{- $oauth := $k.oauthbearer | default dict }}
{{- $oauthCreds := $oauth.credentialsSecret | default dict }}
{{- $password := $k.passwordSecret | default dict }}
{{- $ktls := $k.tls | default dict }}
{{- $kca := $ktls.caSecret | default dict }}
{{- $kcert := $ktls.clientCertSecret | default dict }}
{{- if not (has $proto (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) }}
{{- fail (printf "security.kafka.securityProtocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL" $proto) }}
{{- end }}
{{- if ne $proto "PLAINTEXT" }}
{{- $env = append $env (dict "name" "KAFKA_SECURITY_PROTOCOL" "value" $proto) }}
{{- end }}
{{- if hasPrefix "SASL_" $proto }}
{{- if not (has $mech (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512" "OAUTHBEARER")) }}
{{- fail (printf "security.kafka.saslMechanism %q: %s needs PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER" $mech $proto) }}
{{- end }}
{{- $env = append $env (dict "name" "KAFKA_SASL_MECHANISM" "value" $mech) }}
{{- if eq $mech "OAUTHBEARER" }}
{{- if or $k.username $password.name }}
{{- fail "security.kafka.username and passwordSecret are for PLAIN and SCRAM, not OAUTHBEARER" }}
{{- end }}
{{- if not $external }}
{{- $_ := required "security.kafka.oauthbearer.tokenEndpointUrl is required with OAUTHBEARER (or credentialsSource=external)" $oauth.tokenEndpointUrl }}
{{- end }}
{{- with $oauth.tokenEndpointUrl }}
{{- $env = append $env (dict "name" "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL" "value" .) }}
{{- end }}
{{- if $external }}
{{- if $oauthCreds.name }}
{{- fail "security.kafka.credentialsSource=external: the chart sets no credential, leave oauthbearer.credentialsSecret.name empty" }}
{{- end }}
{{- else }}
{{- $cs := required "security.kafka.oauthbearer.credentialsSecret.name is required with OAUTHBEARER (or credentialsSource=external)" $oauthCreds.name }}
{{- $env = append $env (dict "name" "KAFKA_SASL_OAUTHBEARER_CLIENT_ID" "valueFrom" (dict "secretKeyRef" (dict "name" $cs "key" $oauthCreds.clientIdKey))) }}
{{- $env = append $env (dict "name" "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET" "valueFrom" (dict "secretKeyRef" (dict "name" $cs "key" $oauthCreds.clientSecretKey))) }}
{{- end }}
{{- else }}
{{- if or $oauth.tokenEndpointUrl $oauthCreds.name }}
{{- fail (printf "security.kafka.oauthbearer is for OAUTHBEARER, not %s" $mech) }}
{{- end }}
{{- if not $external }}
{{- $_ := required (printf "security.kafka.username is required with %s (or credentialsSource=external)" $mech) $k.username }}
{{- end }}
{{- with $k.username }}
{{- $env = append $env (dict "name" "KAFKA_SASL_USERNAME" "value" .) }}
{{- end }}
{{- if $external }}
{{- if $password.name }}
{{- fail "security.kafka.credentialsSource=external: the chart sets no credential, leave passwordSecret.name empty" }}
{{- end }}
{{- else }}
{{- $ps := required (printf "security.kafka.passwordSecret.name is required with %s (or credentialsSource=external)" $mech) $password.name }}
{{- $env = append $env (dict "name" "KAFKA_SASL_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" $ps "key" $password.key))) }}
{{- end }}
{{- end }}
{{- else if or $mech $k.username $password.name $oauth.tokenEndpointUrl $oauthCreds.name }}
{{- fail (printf "security.kafka: saslMechanism and the SASL credentials need securityProtocol SASL_PLAINTEXT or SASL_SSL, not %s" $proto) }}
{{- end }}
{{- if or $kca.name $kcert.name }}
{{- if not (or (eq $proto "SSL") (eq $proto "SASL_SSL")) }}
{{- fail (printf "security.kafka.tls needs securityProtocol SSL or SASL_SSL, not %s" $proto) }}
{{- end }}
{{- end }}
{{- with $kca.name }}
{{- $files = append $files (dict "volume" "kafka-ca" "secret" . "items" (list (dict "key" $kca.key "path" "ca.crt"))) }}
{{- $env = append $env (dict "name" "KAFKA_SSL_CA_FILE" "value" (printf "%s/kafka-ca/ca.crt" $tlsRoot)) }}
{{- end }}
{{- with $kcert.name }}
{{- $files = append $files (dict "volume" "kafka-client" "secret" . "items" (list (dict "key" $kcert.certKey "path" "tls.crt") (dict "key" $kcert.keyKey "path" "tls.key"))) }}
{{- $env = append $env (dict "name" "KAFKA_SSL_CERT_FILE" "value" (printf "%s/kafka-client/tls.crt" $tlsRoot)) }}
{{- $env = append $env (dict "name" "KAFKA_SSL_KEY_FILE" "value" (printf "%s/kafka-client/tls.key" $tlsRoot)) }}
{{- end }}

{{- /* PostgreSQL: projector-effect. */}}
{{- $pg := $sec.postgres | default dict }}
{{- $mode := $pg.sslMode | default "" }}
{{- $pca := $pg.caSecret | default dict }}
{{- if and $mode (not (has $mode (list "disable" "allow" "prefer" "require" "verify-ca" "verify-full"))) }}
{{- fail (printf "security.postgres.sslMode %q: want disable, allow, prefer, require, verify-ca or verify-full" $mode) }}
{{- end }}
{{- if and $pca.name $pg.systemRoots }}
{{- fail "security.postgres: caSecret and systemRoots exclude each other" }}
{{- end }}
{{- if and (eq $mode "disable") (or $pca.name $pg.systemRoots) }}
{{- fail "security.postgres.sslMode=disable uses no CA: leave caSecret.name empty and systemRoots false" }}
{{- end }}
{{- if and (has $mode (list "verify-ca" "verify-full")) (not (or $pca.name $pg.systemRoots)) }}
{{- fail (printf "security.postgres.sslMode=%s needs caSecret.name or systemRoots" $mode) }}
{{- end }}
{{- if eq $name "projector-effect" }}
{{- with $mode }}
{{- $env = append $env (dict "name" "POSTGRES_SSL_MODE" "value" .) }}
{{- end }}
{{- if $pg.systemRoots }}
{{- $env = append $env (dict "name" "POSTGRES_SSL_CA_FILE" "value" "system") }}
{{- else if $pca.name }}
{{- $files = append $files (dict "volume" "postgres-ca" "secret" $pca.name "items" (list (dict "key" $pca.key "path" "ca.crt"))) }}
{{- $env = append $env (dict "name" "POSTGRES_SSL_CA_FILE" "value" (printf "%s/postgres-ca/ca.crt" $tlsRoot)) }}
{{- end }}
{{- end }}

{{- /* Consul: consul-effect (its token is consul.tokenSecret). */}}
{{- $ctls := ($sec.consul | default dict).tls | default dict }}
{{- $verify := true }}
{{- if kindIs "bool" $ctls.verify }}{{ $verify = $ctls.verify }}{{ end }}
{{- $cca := $ctls.caSecret | default dict }}
{{- $ccert := $ctls.clientCertSecret | default dict }}
{{- if and (not $ctls.enabled) (or (not $verify) $ctls.serverName $cca.name $ccert.name) }}
{{- fail "security.consul.tls: verify, serverName, caSecret and clientCertSecret need security.consul.tls.enabled=true" }}
{{- end }}
{{- if and (eq $name "consul-effect") $ctls.enabled }}
{{- $env = append $env (dict "name" "CONSUL_HTTP_SSL" "value" "true") }}
{{- $env = append $env (dict "name" "CONSUL_HTTP_SSL_VERIFY" "value" (toString $verify)) }}
{{- with $ctls.serverName }}
{{- $env = append $env (dict "name" "CONSUL_TLS_SERVER_NAME" "value" .) }}
{{- end }}
{{- with $cca.name }}
{{- $files = append $files (dict "volume" "consul-ca" "secret" . "items" (list (dict "key" $cca.key "path" "ca.crt"))) }}
{{- $env = append $env (dict "name" "CONSUL_CACERT" "value" (printf "%s/consul-ca/ca.crt" $tlsRoot)) }}
{{- end }}
{{- with $ccert.name }}
{{- $files = append $files (dict "volume" "consul-client" "secret" . "items" (list (dict "key" $ccert.certKey "path" "tls.crt") (dict "key" $ccert.keyKey "path" "tls.key"))) }}
{{- $env = append $env (dict "name" "CONSUL_CLIENT_CERT" "value" (printf "%s/consul-client/tls.crt" $tlsRoot)) }}
{{- $env = append $env (dict "name" "CONSUL_CLIENT_KEY" "value" (printf "%s/consul-client/tls.key" $tlsRoot)) }}
{{- end }}
{{- end }}

{{- /* gRPC server: projector-effect. */}}
{{- $g := $sec.grpc | default dict }}
{{- $gtls := $g.tls | default dict }}
{{- $gsrv := $gtls.serverCertSecret | default dict }}
{{- $gca := $gtls.clientCASecret | default dict }}
{{- $gtok := $g.adminTokenSecret | default dict }}
{{- $subjects := $g.adminSubjects | default list }}
{{- if and $gca.name (not $gsrv.name) }}
{{- fail "security.grpc.tls.clientCASecret (mTLS) needs security.grpc.tls.serverCertSecret" }}
{{- end }}
{{- if and $subjects (not $gca.name) }}
{{- fail "security.grpc.adminSubjects are client-certificate identities: they need security.grpc.tls.clientCASecret" }}
{{- end }}
{{- range $subjects }}
{{- if or (contains "," .) (ne . (trim .)) (not .) }}
{{- fail (printf "security.grpc.adminSubjects: %q is not one identity (no commas, no surrounding blanks)" .) }}
{{- end }}
{{- end }}
{{- if eq $name "projector-effect" }}
{{- if and (not $svc.grpc) (or $gsrv.name $gtok.name) }}
{{- fail "security.grpc needs services.projector-effect.grpc (the gRPC server)" }}
{{- end }}
{{- if $svc.grpc }}
{{- with $gsrv.name }}
{{- $files = append $files (dict "volume" "grpc-server" "secret" . "items" (list (dict "key" $gsrv.certKey "path" "tls.crt") (dict "key" $gsrv.keyKey "path" "tls.key"))) }}
{{- $env = append $env (dict "name" "ONEX_GRPC_TLS_CERT_FILE" "value" (printf "%s/grpc-server/tls.crt" $tlsRoot)) }}
{{- $env = append $env (dict "name" "ONEX_GRPC_TLS_KEY_FILE" "value" (printf "%s/grpc-server/tls.key" $tlsRoot)) }}
{{- end }}
{{- with $gca.name }}
{{- $files = append $files (dict "volume" "grpc-client-ca" "secret" . "items" (list (dict "key" $gca.key "path" "ca.crt"))) }}
{{- $env = append $env (dict "name" "ONEX_GRPC_CLIENT_CA_FILE" "value" (printf "%s/grpc-client-ca/ca.crt" $tlsRoot)) }}
{{- end }}
{{- with $gtok.name }}
{{- $env = append $env (dict "name" "ONEX_GRPC_ADMIN_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" . "key" $gtok.key))) }}
{{- end }}
{{- with $subjects }}
{{- $env = append $env (dict "name" "ONEX_GRPC_ADMIN_SUBJECTS" "value" (join "," .)) }}
{{- end }}
{{- end }}
{{- end }}

{{- $out := list }}
{{- range $files }}
{{- $out = append $out (merge (dict "dir" (printf "%s/%s" $tlsRoot .volume)) .) }}
{{- end }}
{{- toYaml (dict "env" $env "files" $out) }}
{{- end }}

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

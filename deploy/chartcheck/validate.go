package chartcheck

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Manifest is a rendered release, decoded into the typed API structs.
type Manifest struct {
	Deployments     []*appsv1.Deployment
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	PDBs            []*policyv1.PodDisruptionBudget
	Services        []*corev1.Service
	ServiceAccounts []*corev1.ServiceAccount
}

// Decode decodes every document strictly into its typed struct. Only the
// kinds this chart is meant to render are accepted: anything else (a Secret
// above all) is an error.
func Decode(docs []Doc) (*Manifest, []error) {
	m := &Manifest{}
	var errs []error
	for _, d := range docs {
		where := fmt.Sprintf("%s %s/%s (%s)", d.APIVersion, d.Kind, d.Name, d.Source)
		var err error
		switch d.APIVersion + " " + d.Kind {
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			if err = DecodeStrict(d.JSON, o); err == nil {
				m.Deployments = append(m.Deployments, o)
			}
		case "autoscaling/v2 HorizontalPodAutoscaler":
			o := &autoscalingv2.HorizontalPodAutoscaler{}
			if err = DecodeStrict(d.JSON, o); err == nil {
				m.HPAs = append(m.HPAs, o)
			}
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			if err = DecodeStrict(d.JSON, o); err == nil {
				m.PDBs = append(m.PDBs, o)
			}
		case "v1 Service":
			o := &corev1.Service{}
			if err = DecodeStrict(d.JSON, o); err == nil {
				m.Services = append(m.Services, o)
			}
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			if err = DecodeStrict(d.JSON, o); err == nil {
				m.ServiceAccounts = append(m.ServiceAccounts, o)
			}
		default:
			err = fmt.Errorf("kind not expected from this chart")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", where, err))
		}
	}
	return m, errs
}

// SecretEnvName matches environment variable names whose value is a secret:
// such a variable must come from a secretKeyRef, never a literal value.
// The same pattern guards services.<svc>.env in the chart (_helpers.tpl).
var SecretEnvName = regexp.MustCompile(`(?i)(^|_)(SECRET|PASSWORD|PASSWD|TOKEN|DB_URL|DSN|CLIENT_ID|PRIVATE_KEY|API_KEY)$`)

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1035Label     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	envVarName       = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	// A literal credential in a URL: scheme://user:password@host.
	urlWithPassword = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`)
)

// SecurityEnvNames are the variables of the secured transports (values
// `security`, docs/security.md, plus the Consul token of consul.tokenSecret).
// The default values set none of them.
var SecurityEnvNames = []string{
	"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
	"KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE",
	"KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", "KAFKA_SASL_OAUTHBEARER_CLIENT_ID", "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
	"POSTGRES_SSL_MODE", "POSTGRES_SSL_CA_FILE",
	"CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY", "CONSUL_CACERT", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_TLS_SERVER_NAME",
	"ONEX_GRPC_TLS_CERT_FILE", "ONEX_GRPC_TLS_KEY_FILE", "ONEX_GRPC_CLIENT_CA_FILE", "ONEX_GRPC_ADMIN_TOKEN", "ONEX_GRPC_ADMIN_SUBJECTS",
}

// TLSRoot is where the chart mounts certificate Secrets: /etc/onex/tls/<volume>/<file>.
const TLSRoot = "/etc/onex/tls/"

// MaxSecretFileMode is the most a mounted Secret file may allow: read by the
// owner (root) and the pod's fsGroup, nothing else.
const MaxSecretFileMode = 0o440

// RequiredLabels are on every object of the chart.
var RequiredLabels = []string{
	"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of",
	"app.kubernetes.io/managed-by", "app.kubernetes.io/version", "helm.sh/chart",
}

// Check runs the checks that hold for any values: object validity the API
// server would enforce, and the fleet's operating rules. It returns every
// finding, not only the first.
func (m *Manifest) Check() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	checkMeta := func(kind, name, ns string, labels map[string]string, nameRE *regexp.Regexp, maxLen int) {
		if name == "" {
			add("%s without metadata.name", kind)
		} else if len(name) > maxLen || !nameRE.MatchString(name) {
			add("%s %q: name is not a valid %d-char DNS name", kind, name, maxLen)
		}
		if ns == "" {
			add("%s %q: no metadata.namespace", kind, name)
		}
		for _, l := range RequiredLabels {
			if labels[l] == "" {
				add("%s %q: label %s missing", kind, name, l)
			}
		}
	}

	deployByName := map[string]*appsv1.Deployment{}
	for _, d := range m.Deployments {
		checkMeta("Deployment", d.Name, d.Namespace, d.Labels, dns1123Subdomain, 253)
		if d.Labels["app.kubernetes.io/component"] == "" {
			add("Deployment %q: label app.kubernetes.io/component missing", d.Name)
		}
		if _, dup := deployByName[d.Name]; dup {
			add("Deployment %q rendered twice", d.Name)
		}
		deployByName[d.Name] = d
		errs = append(errs, checkDeployment(d)...)
	}

	for _, h := range m.HPAs {
		checkMeta("HorizontalPodAutoscaler", h.Name, h.Namespace, h.Labels, dns1123Subdomain, 253)
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" {
			add("HPA %q: scaleTargetRef is %s %s, want apps/v1 Deployment", h.Name, ref.APIVersion, ref.Kind)
		}
		if deployByName[ref.Name] == nil {
			add("HPA %q: scaleTargetRef %q is not a rendered Deployment", h.Name, ref.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 {
			add("HPA %q: minReplicas must be set and >= 1", h.Name)
		} else if *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			add("HPA %q: minReplicas %d > maxReplicas %d", h.Name, *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			add("HPA %q: no metrics", h.Name)
		}
		for _, mt := range h.Spec.Metrics {
			if mt.Type != autoscalingv2.ResourceMetricSourceType || mt.Resource == nil {
				add("HPA %q: metric type %q without a resource source", h.Name, mt.Type)
				continue
			}
			if mt.Resource.Target.Type != autoscalingv2.UtilizationMetricType || mt.Resource.Target.AverageUtilization == nil || *mt.Resource.Target.AverageUtilization < 1 {
				add("HPA %q: %s target must be a positive Utilization", h.Name, mt.Resource.Name)
			}
			// Utilization needs a request to be a percentage of.
			if d := deployByName[ref.Name]; d != nil {
				for _, c := range d.Spec.Template.Spec.Containers {
					if _, ok := c.Resources.Requests[mt.Resource.Name]; !ok {
						add("HPA %q scales on %s utilization but container %q requests no %s", h.Name, mt.Resource.Name, c.Name, mt.Resource.Name)
					}
				}
			}
		}
	}

	for _, p := range m.PDBs {
		checkMeta("PodDisruptionBudget", p.Name, p.Namespace, p.Labels, dns1123Subdomain, 253)
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			add("PDB %q: exactly one of minAvailable and maxUnavailable must be set", p.Name)
		}
		for _, v := range []*intstr.IntOrString{p.Spec.MinAvailable, p.Spec.MaxUnavailable} {
			if v != nil && v.Type == intstr.String && !regexp.MustCompile(`^[0-9]+%$`).MatchString(v.StrVal) {
				add("PDB %q: %q is neither an integer nor a percentage", p.Name, v.StrVal)
			}
		}
		if p.Spec.Selector == nil || len(p.Spec.Selector.MatchLabels) == 0 {
			add("PDB %q: no selector", p.Name)
		} else if n := len(m.deploymentsSelectedBy(p.Spec.Selector.MatchLabels)); n != 1 {
			add("PDB %q selects the pods of %d Deployments, want 1", p.Name, n)
		}
	}

	for _, s := range m.Services {
		checkMeta("Service", s.Name, s.Namespace, s.Labels, dns1035Label, 63)
		if len(s.Spec.Selector) == 0 {
			add("Service %q: no selector", s.Name)
			continue
		}
		sel := m.deploymentsSelectedBy(s.Spec.Selector)
		if len(sel) != 1 {
			add("Service %q selects the pods of %d Deployments, want 1", s.Name, len(sel))
			continue
		}
		if len(s.Spec.Ports) == 0 {
			add("Service %q: no ports", s.Name)
		}
		for _, sp := range s.Spec.Ports {
			if sp.Port < 1 || sp.Port > 65535 {
				add("Service %q: port %d out of range", s.Name, sp.Port)
			}
			if sp.Name == "" || !dns1123Label.MatchString(sp.Name) {
				add("Service %q: port %d needs a DNS-label name", s.Name, sp.Port)
			}
			if !containerHasPort(sel[0], sp.TargetPort) {
				add("Service %q: targetPort %s is not a port of Deployment %q", s.Name, sp.TargetPort.String(), sel[0].Name)
			}
		}
	}

	for _, sa := range m.ServiceAccounts {
		checkMeta("ServiceAccount", sa.Name, sa.Namespace, sa.Labels, dns1123Subdomain, 253)
	}
	for _, d := range m.Deployments {
		san := d.Spec.Template.Spec.ServiceAccountName
		if san == "" || san == "default" {
			continue
		}
		found := false
		for _, sa := range m.ServiceAccounts {
			found = found || sa.Name == san
		}
		if !found {
			add("Deployment %q uses ServiceAccount %q, which is not rendered", d.Name, san)
		}
	}
	return errs
}

func checkDeployment(d *appsv1.Deployment) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("Deployment %q: "+format, append([]any{d.Name}, args...)...))
	}
	if d.Spec.Replicas == nil {
		add("spec.replicas not set")
	}
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		add("no selector.matchLabels")
	} else {
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Labels[k] != v {
				add("selector %s=%s does not match the pod template's labels", k, v)
			}
		}
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		add("no containers")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		add("pod securityContext.runAsNonRoot must be true")
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
		if s := v.Secret; s != nil {
			if s.DefaultMode == nil || *s.DefaultMode&^MaxSecretFileMode != 0 {
				add("Secret volume %q: defaultMode %s, want at most 0440", v.Name, fmtMode(s.DefaultMode))
			}
			for _, it := range s.Items {
				if it.Mode != nil && *it.Mode&^MaxSecretFileMode != 0 {
					add("Secret volume %q: item %s mode %s, want at most 0440", v.Name, it.Key, fmtMode(it.Mode))
				}
			}
			// A missing certificate must stop the pod, not start it without.
			if s.Optional != nil && *s.Optional {
				add("Secret volume %q is optional", v.Name)
			}
		}
	}

	for _, c := range pod.Containers {
		cn := c.Name
		if cn == "" || !dns1123Label.MatchString(cn) {
			add("container name %q is not a DNS label", cn)
		}
		if strings.TrimSpace(c.Image) == "" {
			add("container %q: no image", cn)
		} else if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(lastPathElem(c.Image), ":") && !strings.Contains(c.Image, "@") {
			add("container %q: image %q has no pinned tag", cn, c.Image)
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				add("container %q: port %d out of range", cn, p.ContainerPort)
			}
			if p.Name != "" {
				if _, dup := ports[p.Name]; dup {
					add("container %q: port name %q twice", cn, p.Name)
				}
				ports[p.Name] = p.ContainerPort
			}
		}
		checkProbe := func(kind string, p *corev1.Probe, path string) {
			if p == nil {
				add("container %q: no %s probe", cn, kind)
				return
			}
			if p.HTTPGet == nil {
				add("container %q: %s probe is not an httpGet", cn, kind)
				return
			}
			if p.HTTPGet.Path != path {
				add("container %q: %s probe path %q, want %q", cn, kind, p.HTTPGet.Path, path)
			}
			if !portResolves(c, p.HTTPGet.Port) {
				add("container %q: %s probe port %s is not a container port", cn, kind, p.HTTPGet.Port.String())
			}
			if p.PeriodSeconds < 1 || p.TimeoutSeconds < 1 || p.FailureThreshold < 1 {
				add("container %q: %s probe needs periodSeconds, timeoutSeconds and failureThreshold >= 1", cn, kind)
			}
		}
		checkProbe("liveness", c.LivenessProbe, "/healthz")
		checkProbe("readiness", c.ReadinessProbe, "/readyz")
		if c.StartupProbe != nil {
			checkProbe("startup", c.StartupProbe, "/healthz")
		}

		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[res]
			if !hasReq || req.IsZero() {
				add("container %q: no %s request", cn, res)
			}
			if lim, ok := c.Resources.Limits[res]; ok && hasReq && req.Cmp(lim) > 0 {
				add("container %q: %s request %s above limit %s", cn, res, req.String(), lim.String())
			}
		}
		if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || lim.Cmp(resource.MustParse("16Mi")) < 0 {
			add("container %q: no (or a tiny) memory limit", cn)
		}

		sc := c.SecurityContext
		switch {
		case sc == nil:
			add("container %q: no securityContext", cn)
		default:
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				add("container %q: runAsNonRoot must be true", cn)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				add("container %q: readOnlyRootFilesystem must be true", cn)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				add("container %q: allowPrivilegeEscalation must be false", cn)
			}
			if sc.Privileged != nil && *sc.Privileged {
				add("container %q: privileged", cn)
			}
			if sc.Capabilities == nil || !containsCap(sc.Capabilities.Drop, "ALL") {
				add("container %q: capabilities must drop ALL", cn)
			} else if len(sc.Capabilities.Add) > 0 {
				add("container %q: adds capabilities %v", cn, sc.Capabilities.Add)
			}
		}
		for _, vm := range c.VolumeMounts {
			if !volumes[vm.Name] {
				add("container %q: volumeMount %q has no volume", cn, vm.Name)
			}
			if v := VolumeOf(pod, vm.Name); v != nil && v.Secret != nil {
				if !vm.ReadOnly {
					add("container %q: Secret volume %q is not mounted readOnly", cn, vm.Name)
				}
				// subPath mounts are never updated: a renewed certificate
				// would not reach the pod.
				if vm.SubPath != "" || vm.SubPathExpr != "" {
					add("container %q: Secret volume %q mounted with a subPath", cn, vm.Name)
				}
			}
		}

		seen := map[string]bool{}
		drain := -1
		for _, e := range c.Env {
			if !envVarName.MatchString(e.Name) {
				add("container %q: env name %q invalid", cn, e.Name)
			}
			if seen[e.Name] {
				add("container %q: env %s set twice", cn, e.Name)
			}
			seen[e.Name] = true
			if e.Value != "" && e.ValueFrom != nil {
				add("container %q: env %s has both value and valueFrom", cn, e.Name)
			}
			if e.ValueFrom == nil && SecretEnvName.MatchString(e.Name) {
				add("container %q: env %s is a secret but has a literal value; use secretKeyRef", cn, e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				if e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
					add("container %q: env %s secretKeyRef needs name and key", cn, e.Name)
				}
			}
			if urlWithPassword.MatchString(e.Value) {
				add("container %q: env %s holds a URL with a password", cn, e.Name)
			}
			// A certificate path must name a file of a Secret the
			// container mounts read-only.
			if strings.HasPrefix(e.Value, TLSRoot) {
				if _, _, err := ResolveSecretFile(pod, c, e.Value); err != nil {
					add("container %q: env %s=%s: %v", cn, e.Name, e.Value, err)
				}
			}
			if e.Name == "ONEX_DRAIN_TIMEOUT" {
				n, err := strconv.Atoi(e.Value)
				if err != nil || n < 1 || n > 300 {
					add("container %q: ONEX_DRAIN_TIMEOUT=%q is not within 1..300", cn, e.Value)
				}
				drain = n
			}
		}
		for _, want := range []string{"KAFKA_BOOTSTRAP_SERVERS", "ONEX_ENVIRONMENT", "ONEX_DRAIN_TIMEOUT", "ONEX_LOG_LEVEL", "ONEX_HTTP_PORT", "CONSUL_HTTP_ADDR"} {
			if !seen[want] {
				add("container %q: env %s not set", cn, want)
			}
		}
		if seen["ONEX_INPUT_TOPIC"] || seen["ONEX_OUTPUT_TOPIC"] {
			add("container %q: ONEX_INPUT_TOPIC/ONEX_OUTPUT_TOPIC were removed; the service refuses to start with them", cn)
		}
		if seen["KAFKA_INSTANCE_ID"] {
			add("container %q: KAFKA_INSTANCE_ID gives each replica its own consumer group", cn)
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil || e.ConfigMapRef != nil {
				add("container %q: envFrom hides which variables are set; list them in env", cn)
			}
		}
		// The grace period must outlast the drain, or Kubernetes SIGKILLs a
		// service that is still committing its offsets.
		if pod.TerminationGracePeriodSeconds == nil {
			add("no terminationGracePeriodSeconds")
		} else if drain >= 0 && *pod.TerminationGracePeriodSeconds <= int64(drain) {
			add("terminationGracePeriodSeconds %d is not greater than ONEX_DRAIN_TIMEOUT %d", *pod.TerminationGracePeriodSeconds, drain)
		}
	}
	return errs
}

func lastPathElem(image string) string {
	if i := strings.LastIndex(image, "/"); i >= 0 {
		return image[i+1:]
	}
	return image
}

func containsCap(caps []corev1.Capability, want corev1.Capability) bool {
	for _, c := range caps {
		if c == want {
			return true
		}
	}
	return false
}

func portResolves(c corev1.Container, p intstr.IntOrString) bool {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return true
		}
	}
	return false
}

func containerHasPort(d *appsv1.Deployment, p intstr.IntOrString) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		if portResolves(c, p) {
			return true
		}
	}
	return false
}

// deploymentsSelectedBy returns the Deployments whose pod template carries
// every label of sel.
func (m *Manifest) deploymentsSelectedBy(sel map[string]string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range m.Deployments {
		ok := true
		for k, v := range sel {
			if d.Spec.Template.Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, d)
		}
	}
	return out
}

// Component returns the app.kubernetes.io/component label (the fleet
// service an object belongs to).
func Component(labels map[string]string) string { return labels["app.kubernetes.io/component"] }

// EnvOf returns a container's env as a map name -> EnvVar.
func EnvOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// ByComponent groups the objects by service.
type ByComponent struct {
	Deployments map[string][]*appsv1.Deployment
	HPAs        map[string][]*autoscalingv2.HorizontalPodAutoscaler
	PDBs        map[string][]*policyv1.PodDisruptionBudget
	Services    map[string][]*corev1.Service
}

// Group groups m's objects by their component label.
func (m *Manifest) Group() ByComponent {
	g := ByComponent{
		Deployments: map[string][]*appsv1.Deployment{},
		HPAs:        map[string][]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs:        map[string][]*policyv1.PodDisruptionBudget{},
		Services:    map[string][]*corev1.Service{},
	}
	for _, o := range m.Deployments {
		g.Deployments[Component(o.Labels)] = append(g.Deployments[Component(o.Labels)], o)
	}
	for _, o := range m.HPAs {
		g.HPAs[Component(o.Labels)] = append(g.HPAs[Component(o.Labels)], o)
	}
	for _, o := range m.PDBs {
		g.PDBs[Component(o.Labels)] = append(g.PDBs[Component(o.Labels)], o)
	}
	for _, o := range m.Services {
		g.Services[Component(o.Labels)] = append(g.Services[Component(o.Labels)], o)
	}
	return g
}

// Keys returns the sorted keys of a map.
func Keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func fmtMode(m *int32) string {
	if m == nil {
		return "unset"
	}
	return fmt.Sprintf("%#o", *m)
}

// VolumeOf returns the pod's volume called name, or nil.
func VolumeOf(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// ResolveSecretFile finds the file at path in container c: the Secret volume
// mounted (read-only) at path's directory and the Secret key projected to
// path's file name. It returns the Secret's name and the key.
func ResolveSecretFile(pod corev1.PodSpec, c corev1.Container, path string) (secret, key string, err error) {
	dir, file := filepath.Split(path)
	dir = strings.TrimSuffix(dir, "/")
	for _, vm := range c.VolumeMounts {
		if strings.TrimSuffix(vm.MountPath, "/") != dir {
			continue
		}
		v := VolumeOf(pod, vm.Name)
		if v == nil || v.Secret == nil {
			return "", "", fmt.Errorf("%s is not a Secret volume", dir)
		}
		if !vm.ReadOnly {
			return "", "", fmt.Errorf("%s is not mounted readOnly", dir)
		}
		if len(v.Secret.Items) == 0 {
			// The whole Secret: every key is a file of its own name.
			return v.Secret.SecretName, file, nil
		}
		for _, it := range v.Secret.Items {
			if it.Path == file {
				return v.Secret.SecretName, it.Key, nil
			}
		}
		return "", "", fmt.Errorf("Secret volume %q projects no %s", vm.Name, file)
	}
	return "", "", fmt.Errorf("nothing is mounted at %s", dir)
}

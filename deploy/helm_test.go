package deploy

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/testpg"
	"github.com/sesame-id/sesame/internal/testredis"
)

// The chart is rendered and linted with Helm's own packages (the engine,
// chartutil and lint of helm.sh/helm/v3, the code `helm template` and
// `helm lint` run), in process: building the helm command itself takes
// several times longer on a cold cache, for the same rendering.
const (
	chartDir   = "helm/sesame"
	testValues = "helm/sesame/ci/test-values.yaml"
	release    = "sesame"
)

// rendered is the chart's output, decoded into the Kubernetes API types.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	netpols     map[string]*networkingv1.NetworkPolicy
	accounts    map[string]*corev1.ServiceAccount
}

// renderChart renders the chart with the test values and overrides
// (Helm's own precedence: a null removes a default).
func renderChart(t *testing.T, overrides map[string]any) *rendered {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ReadValuesFile(testValues)
	if err != nil {
		t.Fatal(err)
	}
	vals = chartutil.CoalesceTables(overrides, vals)
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: "sesame", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		netpols: map[string]*networkingv1.NetworkPolicy{}, accounts: map[string]*corev1.ServiceAccount{},
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			// Strict: a field the API type does not have is an error, as
			// the API server would reject or drop it.
			decode := func(obj any) {
				if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
					t.Fatalf("%s: %s: %v\n%s", name, head.Kind, err, doc)
				}
			}
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				decode(o)
				r.deployments[o.Name] = o
			case "v1 Service":
				o := &corev1.Service{}
				decode(o)
				r.services[o.Name] = o
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				decode(o)
				r.configMaps[o.Name] = o
			case "v1 Secret":
				o := &corev1.Secret{}
				decode(o)
				r.secrets[o.Name] = o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				decode(o)
				r.pdbs[o.Name] = o
			case "autoscaling/v2 HorizontalPodAutoscaler":
				o := &autoscalingv2.HorizontalPodAutoscaler{}
				decode(o)
				r.hpas[o.Name] = o
			case "networking.k8s.io/v1 NetworkPolicy":
				o := &networkingv1.NetworkPolicy{}
				decode(o)
				r.netpols[o.Name] = o
			case "v1 ServiceAccount":
				o := &corev1.ServiceAccount{}
				decode(o)
				r.accounts[o.Name] = o
			default:
				t.Fatalf("%s: unexpected %s %s", name, head.APIVersion, head.Kind)
			}
		}
	}
	return r
}

func get[T any](t *testing.T, m map[string]*T, name string) *T {
	t.Helper()
	o, ok := m[name]
	if !ok {
		t.Fatalf("the chart renders no %T named %s (has %v)", o, name, slices.Sorted(maps.Keys(m)))
	}
	return o
}

// TestChartLint: `helm lint` finds no error, with the chart's defaults
// and with the test values.
func TestChartLint(t *testing.T) {
	ci, err := chartutil.ReadValuesFile(testValues)
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]map[string]any{"defaults": nil, "ci/test-values.yaml": ci} {
		l := lint.All(chartDir, vals, "sesame", false)
		for _, m := range l.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint (%s): %s", name, m)
			} else {
				t.Logf("helm lint (%s): %s", name, m)
			}
		}
	}
}

// component is one of the chart's Sésame containers with its config file.
type component struct {
	dep       *appsv1.Deployment
	container corev1.Container
	cfgText   string
	cfgPath   string // as the container reads it
	cfg       *config.Config
	env       map[string]string // the container's env, resolved from the Secret
	runtime   []string          // the container's Go runtime env (GOGC, GOMEMLIMIT), NAME=value
}

// loadComponent finds the container's config file through its -config
// argument, its volume mount and the ConfigMap, and parses it with the
// env the container gets.
func loadComponent(t *testing.T, r *rendered, name, part string) *component {
	t.Helper()
	dep := get(t, r.deployments, name)
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(spec.Containers))
	}
	c := &component{dep: dep, container: spec.Containers[0], env: map[string]string{}}
	args := c.container.Args
	if len(args) < 3 || args[0] != part || args[1] != "-config" {
		t.Fatalf("%s: args %q: want [%s -config FILE ...] (the image's entrypoint is /sesame)", name, args, part)
	}
	c.cfgPath = args[2]
	vol, file := volumeFile(t, spec, c.container, c.cfgPath)
	if vol.ConfigMap == nil {
		t.Fatalf("%s: %s is not from a ConfigMap", name, c.cfgPath)
	}
	cm := get(t, r.configMaps, vol.ConfigMap.Name)
	text, ok := cm.Data[file]
	if !ok {
		t.Fatalf("%s: ConfigMap %s has no key %s", name, cm.Name, file)
	}
	c.cfgText = text
	for _, e := range c.container.Env {
		// Go's runtime settings are plain values, not secrets.
		if e.Name == "GOGC" || e.Name == "GOMEMLIMIT" {
			if e.Value == "" || e.ValueFrom != nil {
				t.Errorf("%s: env %s: want a plain value, got %+v", name, e.Name, e)
			}
			c.runtime = append(c.runtime, e.Name+"="+e.Value)
			continue
		}
		ref := e.ValueFrom
		if ref == nil || ref.SecretKeyRef == nil {
			t.Errorf("%s: env %s is not from a Secret", name, e.Name)
			continue
		}
		sec := get(t, r.secrets, ref.SecretKeyRef.Name)
		v, ok := sec.Data[ref.SecretKeyRef.Key]
		if !ok {
			t.Errorf("%s: env %s: Secret %s has no key %s: the pod would not start", name, e.Name, sec.Name, ref.SecretKeyRef.Key)
		}
		c.env[e.Name] = string(v)
	}
	// Exactly what the config references: every variable is provided,
	// and no other secret reaches this container.
	req, opt := configRefs(text)
	if len(opt) > 0 {
		t.Errorf("%s: the config references %v with defaults: the chart's configs take every value from the Secret", name, opt)
	}
	if got := slices.Sorted(maps.Keys(c.env)); !slices.Equal(got, req) {
		t.Errorf("%s: env %v, but its config references %v", name, got, req)
	}
	onlyEnv(t, text, c.env)
	cfg, err := config.Parse(c.cfgPath, []byte(text))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c.cfg = cfg
	return c
}

// volumeFile finds the volume and the key a container path comes from.
func volumeFile(t *testing.T, spec corev1.PodSpec, c corev1.Container, path string) (corev1.Volume, string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, m.MountPath+"/")
		if !ok {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s: volume %s is mounted read-write", c.Name, m.Name)
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			var items []corev1.KeyToPath
			switch {
			case v.ConfigMap != nil:
				items = v.ConfigMap.Items
			case v.Secret != nil:
				items = v.Secret.Items
			}
			for _, it := range items {
				if it.Path == rel {
					return v, it.Key
				}
			}
			t.Fatalf("%s: volume %s has no item at %s", c.Name, v.Name, rel)
		}
	}
	t.Fatalf("%s: %s is under no volume mount", c.Name, path)
	return corev1.Volume{}, ""
}

func podLabelsMatch(t *testing.T, what string, sel map[string]string, dep *appsv1.Deployment) {
	t.Helper()
	if len(sel) == 0 {
		t.Errorf("%s: empty selector", what)
	}
	for k, v := range sel {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pods of %s", what, k, v, dep.Name)
		}
	}
}

func checkSecurity(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	spec := dep.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: the pod must run as non-root (runAsNonRoot, a non-zero runAsUser)", dep.Name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", dep.Name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: a service account token is mounted, and Sésame never calls the API", dep.Name)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: readOnlyRootFilesystem is not true", dep.Name, c.Name)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation is not false", dep.Name, c.Name)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s/%s: capabilities do not drop ALL", dep.Name, c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s/%s: no CPU request: the HPA's utilisation needs one", dep.Name, c.Name)
		}
	}
}

// containerPort resolves a probe's or a Service's port (a name or a
// number) to the container's port number.
func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("%s: no port named %s", c.Name, p.StrVal)
	return 0
}

func listenPort(t *testing.T, addr string) int32 {
	t.Helper()
	p, err := strconv.Atoi(portOf(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	return int32(p)
}

// TestChartBroker: the broker's Deployment against the config it
// mounts: ports, probes on the platforms' real endpoints, env from the
// Secret, signing keys as files, the metrics port kept off the public
// Service, and the PDB, HPA and NetworkPolicy around it.
func TestChartBroker(t *testing.T) {
	r := renderChart(t, nil)
	b := loadComponent(t, r, release+"-broker", "broker")
	checkSecurity(t, b.dep)
	cfg := b.cfg.Broker
	c := b.container

	platformPorts := map[int32]string{}
	for _, p := range cfg.Platforms {
		host, _, _ := net.SplitHostPort(p.Listen)
		if host != "0.0.0.0" {
			t.Errorf("platform %s listens on %s: the kubelet and the Service reach the pod's IP", p.ID, p.Listen)
		}
		port := listenPort(t, p.Listen)
		platformPorts[port] = p.ID
		if got := containerPort(t, c, intstr.FromString(p.ID)); got != port {
			t.Errorf("container port %s is %d, platform %s listens on %d", p.ID, got, p.ID, port)
		}
	}
	metrics := listenPort(t, cfg.MetricsListen)
	if got := containerPort(t, c, intstr.FromString("metrics")); got != metrics {
		t.Errorf("container port metrics is %d, metrics_listen is %d", got, metrics)
	}

	// Probes: liveness /healthz and readiness /readyz, on a platform's
	// port (the broker serves them there, not on the metrics listener).
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("broker: no HTTP %s probe", pr.name)
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path {
			t.Errorf("broker: %s probe on %s, want %s", pr.name, pr.probe.HTTPGet.Path, pr.path)
		}
		if _, ok := platformPorts[containerPort(t, c, pr.probe.HTTPGet.Port)]; !ok {
			t.Errorf("broker: %s probe on port %s, which no platform listens on", pr.name, pr.probe.HTTPGet.Port.String())
		}
	}

	// Draining: the pod outlives -drain plus shutdown and flush.
	args := c.Args
	i := slices.Index(args, "-drain")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("broker: args %q lack -drain", args)
	}
	drain := mustDuration(t, args[i+1])
	if g := b.dep.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < drain+30*time.Second {
		t.Errorf("broker: terminationGracePeriodSeconds below drain %s + 20 s shutdown + 10 s flush", drain)
	}

	// Signing keys: files of the Secret, private JWKS.
	dir := t.TempDir()
	for _, p := range cfg.Platforms {
		if len(p.SigningKeys) == 0 {
			t.Errorf("platform %s: no signing_keys: each replica would make its own", p.ID)
		}
		for _, k := range p.SigningKeys {
			vol, key := volumeFile(t, b.dep.Spec.Template.Spec, c, k)
			if vol.Secret == nil {
				t.Errorf("%s: not from a Secret", k)
				continue
			}
			data, ok := get(t, r.secrets, vol.Secret.SecretName).Data[key]
			if !ok {
				t.Errorf("%s: Secret %s has no key %s", k, vol.Secret.SecretName, key)
				continue
			}
			f := filepath.Join(dir, key)
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
			checkPrivateJWKS(t, f, p.IsPlus())
		}
	}

	// The public Service: every platform, never metrics.
	pub := get(t, r.services, release)
	podLabelsMatch(t, "Service "+pub.Name, pub.Spec.Selector, b.dep)
	var served []string
	for _, sp := range pub.Spec.Ports {
		port := containerPort(t, c, sp.TargetPort)
		if port == metrics {
			t.Errorf("Service %s exposes the metrics port %d", pub.Name, port)
		}
		id, ok := platformPorts[port]
		if !ok {
			t.Errorf("Service %s: port %d is no platform's", pub.Name, port)
		}
		served = append(served, id)
	}
	if len(served) != len(cfg.Platforms) {
		t.Errorf("Service %s serves %v, the config has %d platforms", pub.Name, served, len(cfg.Platforms))
	}
	ms := get(t, r.services, release+"-metrics")
	if ms.Spec.Type != corev1.ServiceTypeClusterIP || len(ms.Spec.Ports) != 1 || containerPort(t, c, ms.Spec.Ports[0].TargetPort) != metrics {
		t.Errorf("Service %s: want a ClusterIP with the metrics port alone", ms.Name)
	}
	podLabelsMatch(t, "Service "+ms.Name, ms.Spec.Selector, b.dep)

	// NetworkPolicy: the metrics port only from named peers.
	np := get(t, r.netpols, release+"-broker")
	podLabelsMatch(t, "NetworkPolicy "+np.Name, np.Spec.PodSelector.MatchLabels, b.dep)
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("NetworkPolicy %s: no Ingress policy type", np.Name)
	}
	allowed := map[int32]bool{}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil {
				t.Errorf("NetworkPolicy %s: a rule without a port opens every port", np.Name)
				continue
			}
			port := containerPort(t, c, *p.Port)
			allowed[port] = true
			if port != metrics {
				continue
			}
			if len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s: the metrics port is open to any source", np.Name)
			}
			for _, peer := range rule.From {
				if peer.IPBlock != nil || (peer.NamespaceSelector == nil && peer.PodSelector == nil) {
					t.Errorf("NetworkPolicy %s: the metrics port is open to %+v; only monitoring's namespace or pods", np.Name, peer)
				}
			}
		}
	}
	for port, id := range platformPorts {
		if !allowed[port] {
			t.Errorf("NetworkPolicy %s: platform %s's port %d is not allowed in", np.Name, id, port)
		}
	}
	if !allowed[metrics] {
		t.Errorf("NetworkPolicy %s: the metrics port is not allowed from monitoring", np.Name)
	}

	// PDB and HPA.
	pdb := get(t, r.pdbs, release+"-broker")
	podLabelsMatch(t, "PodDisruptionBudget "+pdb.Name, pdb.Spec.Selector.MatchLabels, b.dep)
	hpa := get(t, r.hpas, release+"-broker")
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != b.dep.Name {
		t.Errorf("HPA %s scales %s %s, not the broker", hpa.Name, ref.Kind, ref.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
		t.Errorf("HPA %s: minReplicas below 2: one pod lost would stop logins", hpa.Name)
	}
	if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("HPA %s: no CPU metric", hpa.Name)
	}
	if b.dep.Spec.Replicas != nil {
		t.Errorf("broker: replicas is set while the HPA owns the count: each upgrade would reset it")
	}
	if min := pdb.Spec.MinAvailable; min == nil || min.IntValue() < 1 || int32(min.IntValue()) >= *hpa.Spec.MinReplicas {
		t.Errorf("PodDisruptionBudget %s: minAvailable must be at least 1 and below the HPA's minReplicas, or no node could be drained", pdb.Name)
	}
	sa := get(t, r.accounts, b.dep.Spec.Template.Spec.ServiceAccountName)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s mounts its token", sa.Name)
	}
}

// TestChartDashboard: the citizen space's Deployment against its config.
func TestChartDashboard(t *testing.T) {
	r := renderChart(t, nil)
	d := loadComponent(t, r, release+"-dashboard", "dashboard")
	checkSecurity(t, d.dep)
	port := listenPort(t, d.cfg.Dashboard.Listen)
	c := d.container
	for name, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/healthz" || containerPort(t, c, pr.HTTPGet.Port) != port {
			t.Errorf("dashboard: %s probe is not GET /healthz on %d", name, port)
		}
	}
	if d.cfg.Broker != nil {
		t.Error("dashboard: its config holds the broker section, and so the broker's secrets")
	}
	b := loadComponent(t, r, release+"-broker", "broker")
	if d.cfg.Dashboard.Issuer != b.cfg.Broker.Platforms[0].Issuer {
		t.Errorf("dashboard.issuer %s is not the standard platform's %s", d.cfg.Dashboard.Issuer, b.cfg.Broker.Platforms[0].Issuer)
	}
	if d.cfg.History.URL != b.cfg.History.URL {
		t.Error("the citizen space and the broker do not share the history store")
	}
	svc := get(t, r.services, release+"-dashboard")
	podLabelsMatch(t, "Service "+svc.Name, svc.Spec.Selector, d.dep)
	if len(svc.Spec.Ports) != 1 || containerPort(t, c, svc.Spec.Ports[0].TargetPort) != port {
		t.Errorf("Service %s does not serve port %d", svc.Name, port)
	}
	np := get(t, r.netpols, release+"-dashboard")
	podLabelsMatch(t, "NetworkPolicy "+np.Name, np.Spec.PodSelector.MatchLabels, d.dep)
}

// TestChartCheckConfig: `sesame check-config` accepts the rendered
// configs with the env their containers get.
func TestChartCheckConfig(t *testing.T) {
	r := renderChart(t, nil)
	for _, name := range []string{release + "-broker", release + "-dashboard"} {
		part := strings.TrimPrefix(name, release+"-")
		c := loadComponent(t, r, name, part)
		f := filepath.Join(t.TempDir(), part+".yaml")
		if err := os.WriteFile(f, []byte(c.cfgText), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Log(strings.TrimSpace(checkConfig(t, f, c.env)))
	}
}

// TestChartServes runs the broker and the citizen space as the chart
// configures them (on a private Redis and PostgreSQL, listeners moved to
// loopback): the probes' paths answer on the probes' ports, metrics only
// on the metrics port, and readiness fails while draining.
func TestChartServes(t *testing.T) {
	redis := testredis.Start(t)
	pg := testpg.Start(t)
	ports := map[string]int{"std": freePort(t), "plus": freePort(t), "metrics": freePort(t), "dashboard": freePort(t)}
	r := renderChart(t, map[string]any{
		"broker": map[string]any{
			"platforms":   map[string]any{"std": map[string]any{"port": ports["std"]}, "plus": map[string]any{"port": ports["plus"]}},
			"metricsPort": ports["metrics"],
			"drain":       "2s",
		},
		"dashboard": map[string]any{"port": ports["dashboard"]},
		"config": map[string]any{"broker": map[string]any{
			// A null drops the chart's default (Sentinel) as it would for
			// an operator: here one private Redis on its unix socket.
			"redis": map[string]any{"url": "unix://" + redis.Socket(), "addrs": nil, "master_name": nil, "username": nil, "password": nil},
		}},
		"secrets": map[string]any{"env": map[string]any{"SESAME_HISTORY_URL": pg.NewDB(t)}},
	})
	broker := loadComponent(t, r, release+"-broker", "broker")
	dash := loadComponent(t, r, release+"-dashboard", "dashboard")
	if want := []string{"GOGC=400", "GOMEMLIMIT=460MiB"}; !slices.Equal(broker.runtime, want) {
		t.Errorf("broker: Go runtime env %v, want the chart's defaults %v", broker.runtime, want)
	}
	bp := runComponent(t, r, broker)
	dp := runComponent(t, r, dash)

	c := broker.container
	at := func(p intstr.IntOrString, path string) string {
		return fmt.Sprintf("http://127.0.0.1:%d%s", containerPort(t, c, p), path)
	}
	live, ready := c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet
	waitStatus(t, bp, at(live.Port, live.Path), 200)
	waitStatus(t, bp, at(ready.Port, ready.Path), 200)
	for _, p := range broker.cfg.Broker.Platforms {
		if got := status(at(intstr.FromString(p.ID), "/healthz")); got != 200 {
			t.Errorf("platform %s: /healthz answered %d", p.ID, got)
		}
		if got := status(at(intstr.FromString(p.ID), "/metrics")); got != 404 {
			t.Errorf("platform %s: /metrics answered %d on a public port", p.ID, got)
		}
	}
	if got := status(at(intstr.FromString("metrics"), "/metrics")); got != 200 {
		t.Errorf("metrics port: /metrics answered %d", got)
	}
	dl := dash.container.LivenessProbe.HTTPGet
	waitStatus(t, dp, fmt.Sprintf("http://127.0.0.1:%d%s", containerPort(t, dash.container, dl.Port), dl.Path), 200)

	// SIGTERM: readiness fails at once while the process still answers
	// (-drain), then it exits within the grace period.
	start := time.Now()
	bp.sigterm()
	waitStatus(t, bp, at(ready.Port, ready.Path), 503)
	if got := status(at(live.Port, live.Path)); got != 200 {
		t.Errorf("draining: /healthz answered %d: liveness must hold, or the kubelet restarts a pod that is stopping", got)
	}
	grace := time.Duration(*broker.dep.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	select {
	case err := <-bp.done:
		bp.done <- err
		if err != nil {
			t.Errorf("broker exited with %v after SIGTERM", err)
		}
		t.Logf("broker stopped %s after SIGTERM (drain 2s, grace %s)", time.Since(start).Round(time.Millisecond), grace)
	case <-time.After(grace):
		t.Errorf("broker still running %s after SIGTERM: the kubelet would kill it", grace)
	}
}

// runComponent starts a container's command on the host: each volume
// mount becomes a folder holding the volume's items, the config's
// listeners move from 0.0.0.0 to loopback.
func runComponent(t *testing.T, r *rendered, c *component) *proc {
	t.Helper()
	spec := c.dep.Spec.Template.Spec
	root := t.TempDir()
	text := strings.ReplaceAll(c.cfgText, "0.0.0.0:", "127.0.0.1:")
	args := slices.Clone(c.container.Args)
	var pairs []string
	for _, m := range c.container.VolumeMounts {
		dir := filepath.Join(root, m.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			var data map[string][]byte
			var items []corev1.KeyToPath
			switch {
			case v.ConfigMap != nil:
				data = map[string][]byte{}
				for k, s := range get(t, r.configMaps, v.ConfigMap.Name).Data {
					data[k] = []byte(s)
				}
				items = v.ConfigMap.Items
			case v.Secret != nil:
				data = get(t, r.secrets, v.Secret.SecretName).Data
				items = v.Secret.Items
			}
			for _, it := range items {
				if err := os.WriteFile(filepath.Join(dir, it.Path), data[it.Key], 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !strings.HasPrefix(m.MountPath, "/tmp") {
			// The pod's scratch space is the test's own /tmp.
			pairs = append(pairs, m.MountPath+"/", dir+"/")
		}
	}
	// One pass, so that a folder made under /tmp is not mapped again by
	// the /tmp mount.
	mapPaths := strings.NewReplacer(pairs...)
	text = mapPaths.Replace(text)
	for i, a := range args {
		args[i] = mapPaths.Replace(a)
	}
	// The config as the pod would see it, with the host's paths.
	if f := mapPaths.Replace(c.cfgPath); f != c.cfgPath {
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Fatalf("%s: config %s is not under /etc/sesame/config", c.dep.Name, c.cfgPath)
	}
	// The process gets the Go runtime settings too: a value Go refuses
	// (GOMEMLIMIT=512M, say) stops it at start, as it would the pod.
	env := maps.Clone(c.env)
	for _, kv := range c.runtime {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return startSesame(t, env, args...)
}

// Package k8s holds pacswatch's Kubernetes manifests (a kustomize base and its overlays); this
// test builds every overlay as kubectl kustomize would, decodes each object strictly into the
// k8s.io/api types (an unknown or misspelt field fails), checks the Indexed Job's wiring, and
// parses each pod's command line with pacswatch's own, so that a manifest never carries a flag
// the binary refuses.
package k8s_test

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/pacswatch/pacswatch/internal/cli"
	"github.com/pacswatch/pacswatch/internal/targets"
)

var overlays = []string{"overlays/external", "overlays/bundled"}

// built is an overlay's objects, decoded.
type built struct {
	jobs         []batchv1.Job
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	secrets      map[string]corev1.Secret
	configMaps   map[string]corev1.ConfigMap
}

// decode decodes one object strictly into its k8s.io/api type.
func (b *built) decode(t *testing.T, where string, doc []byte) {
	t.Helper()
	var meta struct{ Kind string }
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var err error
	switch meta.Kind {
	case "Job":
		var o batchv1.Job
		err = yaml.UnmarshalStrict(doc, &o)
		b.jobs = append(b.jobs, o)
	case "StatefulSet":
		var o appsv1.StatefulSet
		err = yaml.UnmarshalStrict(doc, &o)
		b.statefulSets = append(b.statefulSets, o)
	case "Service":
		var o corev1.Service
		err = yaml.UnmarshalStrict(doc, &o)
		b.services = append(b.services, o)
	case "Secret":
		var o corev1.Secret
		err = yaml.UnmarshalStrict(doc, &o)
		b.secrets[o.Name] = o
	case "ConfigMap":
		var o corev1.ConfigMap
		err = yaml.UnmarshalStrict(doc, &o)
		b.configMaps[o.Name] = o
	default:
		t.Fatalf("%s: kind %q has no decoder in this test: add one", where, meta.Kind)
	}
	if err != nil {
		t.Errorf("%s: %s: strict decode: %v", where, meta.Kind, err)
	}
}

// build runs kustomize on dir and decodes what it makes.
func build(t *testing.T, dir string) *built {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b := &built{secrets: map[string]corev1.Secret{}, configMaps: map[string]corev1.ConfigMap{}}
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		b.decode(t, dir+" "+r.GetKind()+"/"+r.GetName(), doc)
	}
	return b
}

// TestFilesDecodeStrictly: every manifest file, not only what kustomize makes of it, is made
// of known fields (kustomize keeps unknown fields of a base as they are).
func TestFilesDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("*/*/*.yaml")
	files = append(files, more...)
	if len(files) < 5 {
		t.Fatalf("found %d manifest files, want the base's and both overlays'", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "kustomization.yaml" {
			var k types.Kustomization
			if err := yaml.UnmarshalStrict(data, &k); err != nil {
				t.Errorf("%s: strict decode: %v", f, err)
			}
			continue
		}
		b := &built{secrets: map[string]corev1.Secret{}, configMaps: map[string]corev1.ConfigMap{}}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			b.decode(t, fmt.Sprintf("%s document %d", f, i+1), doc)
		}
	}
}

func TestIndexedJob(t *testing.T) {
	for _, dir := range overlays {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b := build(t, dir)
			if len(b.jobs) != 1 {
				t.Fatalf("%d Jobs, want 1", len(b.jobs))
			}
			checkJob(t, b, b.jobs[0])
		})
	}
}

// checkJob checks the Job's wiring and parses every pod's command line with pacswatch's.
func checkJob(t *testing.T, b *built, job batchv1.Job) {
	spec := job.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode %v, want Indexed", spec.CompletionMode)
	}
	if spec.Completions == nil || spec.Parallelism == nil || *spec.Completions != *spec.Parallelism || *spec.Completions < 1 {
		t.Fatalf("completions %v, parallelism %v: want equal, at least 1", spec.Completions, spec.Parallelism)
	}
	n := int(*spec.Completions)
	if spec.BackoffLimitPerIndex == nil || *spec.BackoffLimitPerIndex < 1 {
		t.Errorf("backoffLimitPerIndex %v, want a retry per shard", spec.BackoffLimitPerIndex)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q, want Never (backoffLimitPerIndex needs it)", pod.RestartPolicy)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v, want runAsNonRoot and a non-root user", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_RAW"}) {
		t.Errorf("container capabilities %+v, want all dropped and NET_RAW alone added", sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want cpu and memory requests and a memory limit", c.Resources)
	}
	for flag, want := range map[string]string{
		"--shard": fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", n), "--db": "$(DATABASE_URL)", "--discover": "zmap",
		"--errors-exit-code": "0", // a finished shard with some target errors is done, not a failed index
	} {
		if got := flagValue(c.Args, flag); got != want {
			t.Errorf("args: %s %q, want %q", flag, got, want)
		}
	}
	if flagValue(c.Args, "--seed") == "" || flagValue(c.Args, "--name") == "" {
		t.Errorf("args %q: want --seed and --name, the same in every pod", c.Args)
	}
	env := podEnv(t, b, c)
	for i := range n {
		env["JOB_COMPLETION_INDEX"] = fmt.Sprint(i)
		args := expand(t, c.Args, env)
		if err := cli.CheckArgs(args); err != nil {
			hint := ""
			if strings.Contains(err.Error(), "--discover") {
				hint = " (--discover comes with issue 12's scan engine: merge it before this)"
			}
			t.Fatalf("pod %d: pacswatch refuses its command line %q: %v%s", i, args, err, hint)
		}
		if si, sn, err := targets.ParseShard(flagValue(args, "--shard")); err != nil || int(si) != i || int(sn) != n {
			t.Errorf("pod %d: --shard %q is shard %d/%d, %v", i, flagValue(args, "--shard"), si, sn, err)
		}
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/pacswatch" && !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
			_, ok := b.configMaps[configMapOf(v)]
			return v.Name == m.Name && ok
		}) {
			t.Errorf("volume %s holds no ConfigMap of the build", m.Name)
		}
	}
}

func configMapOf(v corev1.Volume) string {
	if v.ConfigMap == nil {
		return ""
	}
	return v.ConfigMap.Name
}

// podEnv returns the container's environment as the kubelet would set it: the completion
// index from its annotation, and values from the build's Secrets.
func podEnv(t *testing.T, b *built, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			if e.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
				t.Errorf("env %s from %s, want the completion index", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = "0"
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := b.secrets[ref.Name]
			if !ok {
				t.Fatalf("env %s: Secret %s is not in the build", e.Name, ref.Name)
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = strings.TrimSpace(string(v))
		default:
			env[e.Name] = e.Value
		}
	}
	if !strings.HasPrefix(env["DATABASE_URL"], "postgres://") {
		t.Errorf("DATABASE_URL %q, want a postgres:// URL from a Secret", env["DATABASE_URL"])
	}
	return env
}

var ref = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand replaces $(VAR) in args as the kubelet does; a reference to no variable fails.
func expand(t *testing.T, args []string, env map[string]string) []string {
	t.Helper()
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = ref.ReplaceAllStringFunc(a, func(m string) string {
			v, ok := env[m[2:len(m)-1]]
			if !ok {
				t.Errorf("arg %q refers to %s, which the container's env does not define", a, m)
			}
			return v
		})
	}
	return out
}

// flagValue returns the value after flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// TestCheckArgsRefuses: the command-line check can fail, as the manifests' would with a flag
// the binary does not know or a malformed value.
func TestCheckArgsRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"scan", "--shardd", "0/4"},
		{"scan", "--rate", "fast"},
		{"serve-everything"},
		{"scan", "-oX", "out.xml"},
	} {
		if err := cli.CheckArgs(args); err == nil {
			t.Errorf("CheckArgs(%q) = nil, want an error", args)
		}
	}
	if err := cli.CheckArgs([]string{"scan", "-iL", "/etc/pacswatch/targets.txt", "--shard", "1/4", "--seed", "7"}); err != nil {
		t.Errorf("CheckArgs of a good scan: %v", err)
	}
}

// TestBundledDatabase: the bundled PostgreSQL's Service, user, database and password are the
// ones the Job's URL names.
func TestBundledDatabase(t *testing.T) {
	b := build(t, "overlays/bundled")
	if len(b.statefulSets) != 1 || len(b.services) != 1 {
		t.Fatalf("%d StatefulSets, %d Services, want 1 and 1", len(b.statefulSets), len(b.services))
	}
	ss, svc := b.statefulSets[0], b.services[0]
	if svc.Spec.Selector["app.kubernetes.io/component"] != ss.Spec.Template.Labels["app.kubernetes.io/component"] {
		t.Errorf("the Service selects %v, the StatefulSet's pods are %v", svc.Spec.Selector, ss.Spec.Template.Labels)
	}
	job := b.jobs[0].Spec.Template.Spec.Containers[0]
	u, err := url.Parse(podEnv(t, b, job)["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	var pg map[string][]byte
	for _, from := range ss.Spec.Template.Spec.Containers[0].EnvFrom {
		if from.SecretRef != nil {
			pg = b.secrets[from.SecretRef.Name].Data
		}
	}
	pw, _ := u.User.Password()
	if u.Hostname() != svc.Name || u.User.Username() != string(pg["POSTGRES_USER"]) ||
		strings.TrimPrefix(u.Path, "/") != string(pg["POSTGRES_DB"]) || pw != string(pg["POSTGRES_PASSWORD"]) {
		t.Errorf("the Job's URL names %s@%s%s, the bundled PostgreSQL is %s@%s/%s (or the passwords differ)",
			u.User.Username(), u.Hostname(), u.Path, pg["POSTGRES_USER"], svc.Name, pg["POSTGRES_DB"])
	}
}

package deploy

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/config"
)

const productionExample = "../config/production.example.yaml"

// placeholders gives each variable of the production example a value of
// the shape it needs.
func placeholders(vars []string) map[string]string {
	env := map[string]string{}
	for _, v := range vars {
		switch {
		case strings.HasSuffix(v, "_KEY") || strings.Contains(v, "_KEY_"):
			env[v] = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 16) + v)[:32])
		case strings.HasSuffix(v, "_URL"):
			env[v] = "postgres://sesame:placeholder@db.internal:5432/sesame?sslmode=verify-full"
		case strings.Contains(v, "_SENTINEL_"):
			env[v] = strings.ToLower(v) + ".internal:26379"
		default:
			env[v] = "placeholder-" + strings.Repeat("x", 32)
		}
	}
	return env
}

func loadProduction(t *testing.T) *config.Config {
	t.Helper()
	raw, err := os.ReadFile(productionExample)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := configRefs(string(raw))
	onlyEnv(t, string(raw), placeholders(req))
	cfg, err := config.Parse(productionExample, raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestProductionExample: check-config accepts it with placeholder
// values, every secret comes from the environment without a default, and
// it is set up as production wants.
func TestProductionExample(t *testing.T) {
	raw, err := os.ReadFile(productionExample)
	if err != nil {
		t.Fatal(err)
	}
	req, opt := configRefs(string(raw))
	if len(opt) > 0 {
		t.Errorf("%s: %v have defaults: a missing secret must stop the process", productionExample, opt)
	}
	t.Log(strings.TrimSpace(checkConfig(t, productionExample, placeholders(req))))
	if strings.Contains(string(raw), "dev-only") {
		t.Errorf("%s holds a dev-only credential", productionExample)
	}
	cfg := loadProduction(t)
	b := cfg.Broker
	// Every secret field is a reference: after expansion it holds the
	// placeholder, never a literal written in the file.
	secrets := map[string]string{"broker.sub_secret": b.SubSecret, "broker.redis.password": b.Redis.Password,
		"dashboard.client_secret": cfg.Dashboard.ClientSecret, "dashboard.cookie_key": cfg.Dashboard.CookieKey,
		"history.url": cfg.History.URL, "mail.smtp.password": cfg.Mail.SMTP.Password}
	for i, k := range b.SessionKeys {
		secrets["broker.session_keys["+string(rune('0'+i))+"]"] = k
	}
	for _, idp := range b.IdentityProviders {
		secrets["IdP "+idp.ID+" client_secret"] = idp.ClientSecret
	}
	for _, p := range b.Platforms {
		for _, sp := range p.ServiceProviders {
			if sp.ClientSecret != "" {
				secrets["SP "+sp.ClientID+" client_secret"] = sp.ClientSecret
			}
		}
		for _, dp := range p.DataProviders {
			secrets["data provider "+dp.ID+" client_secret"] = dp.ClientSecret
		}
	}
	values := map[string]bool{}
	for _, v := range placeholders(req) {
		values[v] = true
	}
	for field, v := range secrets {
		if !values[v] {
			t.Errorf("%s: %s is written in the file, not taken from the environment", productionExample, field)
		}
	}
	if cfg.Log.Format != "json" {
		t.Error("log.format is not json")
	}
	if len(b.Redis.Addrs) < 3 || b.Redis.MasterName == "" {
		t.Error("broker.redis: want three sentinels and a master_name")
	}
	if cfg.History == nil || cfg.History.Driver != "postgres" || cfg.Mail == nil || cfg.Mail.SMTP.TLS == "none" || cfg.Mail.SMTP.Host == "" {
		t.Error("want the history on PostgreSQL and mail through an SMTP relay over TLS")
	}
	if b.MetricsListen == "" || len(b.TrustedProxies) == 0 {
		t.Error("want metrics_listen and trusted_proxies set")
	}
	for _, p := range b.Platforms {
		if len(p.SigningKeys) == 0 {
			t.Errorf("platform %s: no signing_keys: replicas would each make their own", p.ID)
		}
		if u, _ := url.Parse(p.Issuer); u.Scheme != "https" {
			t.Errorf("platform %s: issuer %s is not https", p.ID, p.Issuer)
		}
	}
}

// TestProductionExampleIsTheChart: the chart's default config is the
// production example, so that the two cannot drift apart.
func TestProductionExampleIsTheChart(t *testing.T) {
	prod := loadProduction(t)
	r := renderChart(t, nil)
	b := loadComponent(t, r, release+"-broker", "broker")
	d := loadComponent(t, r, release+"-dashboard", "dashboard")
	for _, c := range []struct {
		name        string
		chart, prod any
	}{
		{"broker", b.cfg.Broker, prod.Broker},
		{"dashboard", d.cfg.Dashboard, prod.Dashboard},
		{"history", b.cfg.History, prod.History},
		{"mail", b.cfg.Mail, prod.Mail},
		{"log", b.cfg.Log, prod.Log},
	} {
		if path := firstDiff(c.name, blank(reflect.ValueOf(c.chart)), blank(reflect.ValueOf(c.prod))); path != "" {
			t.Errorf("%s: the chart's default config (deploy/helm/sesame/values.yaml) and %s differ", path, productionExample)
		}
	}
}

// firstDiff names the first place where two blanked values differ, or
// returns "".
func firstDiff(path string, a, b any) string {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return path
		}
		for k := range a {
			if d := firstDiff(path+"."+k, a[k], bm[k]); d != "" {
				return d
			}
		}
		for k := range bm {
			if _, ok := a[k]; !ok {
				return path + "." + k
			}
		}
		return ""
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return path + " (length)"
		}
		for i := range a {
			if d := firstDiff(path+"["+strconv.Itoa(i)+"]", a[i], bs[i]); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a, b) {
		return path + ": " + fmt.Sprint(a) + " vs " + fmt.Sprint(b)
	}
	return ""
}

// blank turns a config section into maps, slices and values, with every
// secret-looking string blanked: the chart's test values and the
// example's placeholders differ, the shape must not.
func blank(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return blank(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				out[f.Name] = blank(v.Field(i))
			}
		}
		return out
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = blank(v.Index(i))
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = blank(v.MapIndex(k))
		}
		return out
	case reflect.String:
		s := v.String()
		if strings.Contains(s, "placeholder") || strings.Contains(s, "test-only") || strings.Contains(s, ".internal:") || strings.Contains(s, "redis-sentinel-") {
			return "<secret>"
		}
		if _, err := base64.RawURLEncoding.DecodeString(s); err == nil && len(s) == 43 {
			return "<key>"
		}
		return s
	default:
		return v.Interface()
	}
}

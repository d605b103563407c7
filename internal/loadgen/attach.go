package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sesame-id/sesame/config"
)

// attach prepares a measure of a stack the bench did not start (`make
// run`, a staging stack): the SP registration and the IdP come from the
// config file the stack runs, the processes from the ports they listen
// on, Redis from the file's broker.redis.url.
func attach(o *Options) (target, *subject, error) {
	cfg, err := config.Load(o.Config)
	if err != nil {
		return target{}, nil, err
	}
	if cfg.Broker == nil {
		return target{}, nil, fmt.Errorf("%s has no broker section", o.Config)
	}
	issuer := strings.TrimRight(o.Attach, "/")
	var pl *config.Platform
	var issuers []string
	for i := range cfg.Broker.Platforms {
		p := &cfg.Broker.Platforms[i]
		issuers = append(issuers, p.Issuer)
		if strings.TrimRight(p.Issuer, "/") == issuer {
			pl = p
		}
	}
	if pl == nil {
		return target{}, nil, fmt.Errorf("-attach %s is no platform issuer of %s (its issuers: %s)", o.Attach, o.Config, strings.Join(issuers, ", "))
	}
	if pl.IsPlus() {
		return target{}, nil, fmt.Errorf("-attach %s is a \"+\" platform: the bench logs in on the standard platform only when attached", o.Attach)
	}
	t := target{issuer: pl.Issuer, identity: benchIdentity, acr: pl.DefaultACR}
	for _, sp := range pl.ServiceProviders {
		if sp.ClientSecret != "" && sp.IsActive() && !sp.CitizenSpace && len(sp.RedirectURIs) > 0 &&
			slices.Contains(sp.Scopes, "openid") && (len(sp.TokenEndpointAuthMethods) == 0 || slices.Contains(sp.TokenEndpointAuthMethods, "client_secret_basic")) {
			t.clientID, t.secret, t.redirectURI = sp.ClientID, sp.ClientSecret, sp.RedirectURIs[0]
			break
		}
	}
	if t.clientID == "" {
		return target{}, nil, fmt.Errorf("%s: platform %s has no active SP with a client secret (client_secret_basic) and a redirect URI for the bench to play", o.Config, pl.ID)
	}
	for _, id := range pl.IdentityProviders {
		for _, idp := range cfg.Broker.IdentityProviders {
			if idp.ID == id && idp.Kind != "eidas" && idp.Issuer != "" && t.idp == "" && isMock(cfg, idp.Issuer) {
				t.idp, t.idpIssuer = idp.ID, idp.Issuer
			}
		}
	}
	if t.idp == "" {
		return target{}, nil, fmt.Errorf("%s: platform %s offers no mock IdP of the providers section (the bench logs in with a test identity)", o.Config, pl.ID)
	}
	if cfg.Broker.Redis.Enabled() {
		o.Store = "redis"
	}

	sub := &subject{where: "the attached stack's own logs"}
	brokerPid, err1 := listenerPid(pl.Issuer)
	idpPid, err2 := listenerPid(t.idpIssuer)
	if err := errors.Join(err1, err2); err == nil {
		sub.brokerPids, sub.idpPid = []int{brokerPid}, idpPid
	}
	if u := cfg.Broker.Redis.URL; u != "" {
		ro, err := redis.ParseURL(u)
		if err != nil {
			return target{}, nil, fmt.Errorf("%s broker.redis.url: %w", o.Config, err)
		}
		ro.PoolSize = 1
		sub.redis = redis.NewClient(ro)
	}
	return t, sub, nil
}

// isMock reports whether issuer is one of the config's mock IdPs.
func isMock(cfg *config.Config, issuer string) bool {
	if cfg.Providers == nil {
		return false
	}
	base := strings.TrimRight(cfg.Providers.BaseURL, "/") + "/"
	return strings.HasPrefix(issuer, base)
}

// listenerPid finds the local process listening on the port of rawURL's
// host, from /proc/net/tcp{,6} and the processes' open sockets. Only the
// user's own processes can be seen.
func listenerPid(rawURL string) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", rawURL, err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, fmt.Errorf("%q: no port", rawURL)
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return 0, fmt.Errorf("%s is not on this machine", rawURL)
		}
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, in := range listeningInodes(raw, n) {
			inodes["socket:["+in+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no process listens on port %d", n)
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && inodes[link] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid, nil
		}
	}
	return 0, fmt.Errorf("the process listening on port %d is not readable (another user's?)", n)
}

// listeningInodes returns the socket inodes of a /proc/net/tcp table
// listening (state 0A) on port.
func listeningInodes(table []byte, port int) []string {
	want := fmt.Sprintf(":%04X", port)
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], want) {
			continue
		}
		out = append(out, f[9])
	}
	return out
}

package broker

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/keys"
)

// openKeys builds the platform's key ring: from its key directory (and
// HSM), from its key files, or generated (dev). Every set loaded must
// sign each algorithm the registry needs, now and at each reload.
func (p *Platform) openKeys(cfg config.Platform) (*keys.Ring, error) {
	// A reload checks against the registry running then (it may have
	// been reloaded too), the first load against the config.
	check := func(s *keys.Set) error {
		live := cfg
		if g := p.current.Load(); g != nil {
			live.ServiceProviders, live.DataProviders = nil, nil
			for _, sp := range g.clients {
				live.ServiceProviders = append(live.ServiceProviders, *sp)
			}
			for _, dp := range g.dps {
				live.DataProviders = append(live.DataProviders, *dp)
			}
		}
		return checkAlgs(live, s)
	}
	switch {
	case cfg.SigningKeysDir != "":
		if cfg.HSM != nil {
			pin, ok := os.LookupEnv(cfg.HSM.PINEnv)
			if !ok {
				return nil, fmt.Errorf("hsm.pin_env: the environment variable %s holding the token's PIN is not set", cfg.HSM.PINEnv)
			}
			h, err := keys.OpenHSM(keys.HSMConfig{Module: cfg.HSM.Module, TokenLabel: cfg.HSM.TokenLabel, PIN: pin})
			if err != nil {
				return nil, err
			}
			p.hsm = h
		}
		return keys.NewRing(func() (*keys.Set, error) { return keys.LoadDir(cfg.SigningKeysDir, p.hsm) }, check)
	case len(cfg.SigningKeys) > 0:
		return keys.NewRing(func() (*keys.Set, error) { return keys.Load(cfg.SigningKeys...) }, check)
	}
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.RS256}
	if cfg.IsPlus() {
		algs = algs[:1]
	}
	s, err := keys.Generate(algs...)
	if err != nil {
		return nil, err
	}
	if err := check(s); err != nil {
		return nil, err
	}
	return keys.StaticRing(s), nil
}

// checkAlgs refuses a key set that cannot sign an algorithm an SP or a
// data provider of cfg was registered with, so that a reload never
// leaves a client without its tokens.
func checkAlgs(cfg config.Platform, s *keys.Set) error {
	var missing []string
	need := func(who, alg string) {
		if alg != "" && !s.Has(jose.SignatureAlgorithm(alg)) {
			missing = append(missing, fmt.Sprintf("%s wants %s", who, alg))
		}
	}
	for _, sp := range cfg.ServiceProviders {
		need("SP "+sp.ClientID, sp.IDTokenSignedResponseAlg)
		need("SP "+sp.ClientID+" (userinfo)", sp.UserinfoSignedResponseAlg)
	}
	for _, dp := range cfg.DataProviders {
		need("data provider "+dp.ID+" (introspection)", dp.IntrospectionSignedResponseAlg)
	}
	if len(missing) > 0 {
		return fmt.Errorf("no signing key for: %s", strings.Join(missing, "; "))
	}
	return nil
}

// ReloadKeys reads the platform's signing keys again (on SIGHUP and at
// each periodic check). A reload that fails keeps the keys in use and
// returns why (the caller logs it); one that succeeds goes live at once
// for every request, and is logged when it changed a key or a state.
func (p *Platform) ReloadKeys() error {
	if !p.signer.Reloadable() {
		return nil
	}
	old, cur, err := p.signer.Reload()
	if err != nil {
		p.metrics.keyReload(p.cfg.ID, "failed")
		return fmt.Errorf("platform %s: signing keys: reload failed, the keys in use stay: %w", p.cfg.ID, err)
	}
	p.metrics.keyReload(p.cfg.ID, "ok")
	if summary(old) != summary(cur) {
		p.log.Info("signing keys reloaded", "keys", summary(cur))
		p.warnShortLead(old, cur)
	}
	return nil
}

// warnShortLead warns of a next key that appeared with less lead than an
// SP's cache of /jwks may need: an SP that fetched /jwks just before the
// key was published may not know it when it starts signing.
func (p *Platform) warnShortLead(old, cur *keys.Set) {
	seen := map[string]bool{}
	for _, k := range old.Keys() {
		seen[k.KeyID] = true
	}
	need := p.cfg.JWKSMaxAge.D(keys.DefaultJWKSMaxAge) + p.cfg.SigningKeysReload.D(30*time.Second)
	for _, k := range cur.Keys() {
		if k.State != keys.Next || seen[k.KeyID] {
			continue
		}
		if lead := time.Until(k.ActivateAt); lead < need {
			p.log.Warn("signing keys: a next key signs sooner than SPs' caches of /jwks are sure to hold it",
				"kid", k.KeyID, "alg", k.Alg, "signs_in", lead.Round(time.Second).String(), "need_at_least", need.String())
		}
	}
}

// summary names a set's keys and states, to log a reload that changed
// something.
func summary(s *keys.Set) string {
	var parts []string
	for _, k := range s.Keys() {
		part := fmt.Sprintf("%s %s %s", k.KeyID, k.Alg, k.State)
		if !k.ActivateAt.IsZero() && k.State == keys.Next {
			part += " from " + k.ActivateAt.UTC().Format(time.RFC3339)
		}
		if k.State == keys.Retired {
			part += " until " + k.RemoveAt.UTC().Format(time.RFC3339)
		}
		if k.InHSM {
			part += " (HSM)"
		}
		parts = append(parts, part)
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// watchKeys reloads the keys every period until stop is closed, so that
// replicas pick up a rotation without a signal.
func (p *Platform) watchKeys(period time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := p.ReloadKeys(); err != nil {
				p.log.Error("signing keys: periodic reload", "err", err)
			}
		}
	}
}

// startKeyWatch starts the periodic reload when the keys have a source.
func (p *Platform) startKeyWatch() {
	if !p.signer.Reloadable() {
		return
	}
	p.keysStop = make(chan struct{})
	p.keysDone = make(chan struct{})
	go func() {
		defer close(p.keysDone)
		p.watchKeys(p.cfg.SigningKeysReload.D(30*time.Second), p.keysStop)
	}()
}

// closeKeys stops the periodic reload and logs out of the HSM.
func (p *Platform) closeKeys() error {
	if p.keysStop != nil {
		close(p.keysStop)
		<-p.keysDone
		p.keysStop = nil
	}
	if p.hsm != nil {
		err := p.hsm.Close()
		p.hsm = nil
		return err
	}
	return nil
}

// ReloadKeys reloads every platform's signing keys (SIGHUP); the error
// names each platform whose reload failed, the others being reloaded.
func (b *Broker) ReloadKeys() error {
	var errs []error
	for _, p := range b.Platforms {
		errs = append(errs, p.ReloadKeys())
	}
	return errors.Join(errs...)
}

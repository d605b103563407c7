package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/redisstore"
	"github.com/sesame-id/sesame/providers/eidasnode"
)

// withEIDASNode serves the mock eIDAS node beside the mock IdPs when the
// providers section has one, under its base URL's path. Its store is its
// own Redis when configured, else brokerStore: inside `sesame dev` the
// node and the bridge share the broker's store, as the EC node and its
// specific parts share Ignite. The returned func releases what it opened.
func withEIDASNode(cfg *config.Providers, mockIdPs http.Handler, brokerStore store.Store) (http.Handler, func(), error) {
	nc := cfg.EIDASNode
	if nc == nil {
		return mockIdPs, func() {}, nil
	}
	st, closeStore := brokerStore, func() {}
	if r := nc.Redis; r.Enabled() {
		rs, err := redisstore.Open(redisstore.Config{
			URL: r.URL, Addrs: r.Addrs, MasterName: r.MasterName, Username: r.Username, Password: r.Password,
			DB: r.DB, Timeout: r.Timeout.D(0), TLSCAFile: r.TLSCAFile, TLS: r.TLS,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("providers.eidas_node.redis: %w", err)
		}
		st, closeStore = rs, func() { _ = rs.Close() }
	}
	if st == nil {
		return nil, nil, errors.New("providers.eidas_node: set redis (the store shared with the bridge); only `sesame dev` can share the broker's memory store")
	}
	node, err := eidasnode.New(*nc, st)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	u, err := url.Parse(node.BaseURL())
	if err != nil {
		closeStore()
		return nil, nil, fmt.Errorf("providers.eidas_node.base_url: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(u.Path+"/", node)
	mux.Handle("/", mockIdPs)
	return mux, closeStore, nil
}

package outbound_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models/outbound"
)

// TestCircuitBreaker: Failures failed calls in a row open a destination's
// breaker; the next call fails at once with ClassCircuitOpen without
// reaching the receiver; after OpenFor one call goes through, and its
// success closes the breaker. Other destinations are not affected, and
// 4xx answers do not count.
func TestCircuitBreaker(t *testing.T) {
	var status atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	recv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) })
	other := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

	const openFor = 150 * time.Millisecond
	var mu sync.Mutex
	var changes []string
	o := withAllow(optionsFor(recv, other))
	o.Breaker = outbound.BreakerOptions{Failures: 3, OpenFor: openFor, OnStateChange: func(dest, from, to string) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, dest+" "+from+"->"+to)
	}}
	c := newClient(t, o)
	post := func(r *receiver) outbound.Result {
		return c.Post(context.Background(), r.url("/hook"), nil, []byte("{}"))
	}

	for i := range 3 {
		if r := post(recv); r.Class != outbound.ClassStatus || r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("call %d: %+v", i+1, r)
		}
	}
	openedAt := time.Now()
	r := post(recv)
	if r.Class != outbound.ClassCircuitOpen || r.StatusCode != 0 || recv.hits.Load() != 3 {
		t.Fatalf("after 3 failures: %+v with %d requests; want %q and still 3", r, recv.hits.Load(), outbound.ClassCircuitOpen)
	}
	if r := post(other); r.Class != "" {
		t.Errorf("another destination: %+v", r)
	}

	// Half-open after the interval: the receiver is well again.
	status.Store(http.StatusNoContent)
	time.Sleep(openFor - time.Since(openedAt) + 20*time.Millisecond)
	if r := post(recv); r.Class != "" || r.StatusCode != http.StatusNoContent {
		t.Fatalf("the probe after %v: %+v", openFor, r)
	}
	for range 5 {
		if r := post(recv); r.Class != "" {
			t.Fatalf("closed again: %+v", r)
		}
	}
	mu.Lock()
	got := strings.Join(changes, "; ")
	mu.Unlock()
	dest := "https://127.0.0.1:" + strings.TrimPrefix(recv.srv.URL, "https://127.0.0.1:")
	if want := dest + " closed->open; " + dest + " open->half-open; " + dest + " half-open->closed"; got != want {
		t.Errorf("state changes %q, want %q", got, want)
	}

	// A failed probe opens it again at once.
	status.Store(http.StatusBadGateway)
	for range 3 {
		post(recv)
	}
	time.Sleep(openFor + 20*time.Millisecond)
	if r := post(recv); r.Class != outbound.ClassStatus {
		t.Fatalf("probe: %+v", r)
	}
	if r := post(recv); r.Class != outbound.ClassCircuitOpen {
		t.Errorf("after a failed probe: %+v", r)
	}

	// 4xx: the receiver is up, it just does not like us.
	status.Store(http.StatusNotFound)
	notFound := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	o = withAllow(optionsFor(notFound))
	o.Breaker = outbound.BreakerOptions{Failures: 2, OpenFor: time.Hour}
	c = newClient(t, o)
	for i := range 5 {
		if r := c.Post(context.Background(), notFound.url("/"), nil, nil); r.Class != outbound.ClassStatus || r.StatusCode != http.StatusNotFound {
			t.Fatalf("call %d: %+v", i+1, r)
		}
	}
}

// TestCircuitBreakerCountsRefusals: a destination refused at dial time
// (it resolves to a non-public address) counts as failing, and a caller
// that gives up does not count at all.
func TestCircuitBreakerCountsRefusals(t *testing.T) {
	recv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	dns := newFakeDNS(t, every(map[string]string{"example.com": "127.0.0.1"}))
	o := optionsFor(recv)
	o.Resolver = dns.Resolver()
	o.Breaker = outbound.BreakerOptions{Failures: 2, OpenFor: time.Hour}
	c := newClient(t, o)
	target := recv.urlAt("example.com", "/")

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		if r := c.Post(canceled, target, nil, nil); r.Class == outbound.ClassCircuitOpen {
			t.Fatalf("a canceled caller opened the breaker: %+v", r)
		}
	}
	for i, want := range []string{outbound.ClassRefused, outbound.ClassRefused, outbound.ClassCircuitOpen} {
		if r := c.Post(context.Background(), target, nil, nil); r.Class != want {
			t.Errorf("call %d: %+v, want %q", i+1, r, want)
		}
	}
}

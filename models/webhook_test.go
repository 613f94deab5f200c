package models_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
	"github.com/rampart-go/rampart/models/outbound"
)

func randomKey(tb testing.TB) []byte {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestSealerBindsAndRotates: a sealed value opens only for the row it was
// sealed for and only untampered; after a rotation it still opens (and is
// reported stale), and after a second one it does not.
func TestSealerBindsAndRotates(t *testing.T) {
	k1, k2, k3 := randomKey(t), randomKey(t), randomKey(t)
	ring, err := models.NewKeyRing(k1, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := models.NewSealer(ring)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "whsec_the-plain-secret"
	sealed, err := s.Seal(secret, "project-a")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, secret) || strings.Contains(sealed, "plain") {
		t.Fatalf("sealed value shows the secret: %q", sealed)
	}
	again, _ := s.Seal(secret, "project-a")
	if again == sealed {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	if got, stale, err := s.Open(sealed, "project-a"); err != nil || got != secret || stale {
		t.Fatalf("Open = %q, %v, %v", got, stale, err)
	}
	if _, _, err := s.Open(sealed, "project-b"); err == nil {
		t.Error("a value sealed for one project opens for another")
	}
	tampered := []byte(sealed)
	tampered[len(tampered)-3] ^= 1
	if _, _, err := s.Open(string(tampered), "project-a"); err == nil {
		t.Error("a tampered value opens")
	}
	if err := ring.Set(k2, k1); err != nil {
		t.Fatal(err)
	}
	if got, stale, err := s.Open(sealed, "project-a"); err != nil || got != secret || !stale {
		t.Fatalf("after a rotation Open = %q, stale %v, %v; want the secret, stale", got, stale, err)
	}
	if err := ring.Set(k3, k2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(sealed, "project-a"); err == nil {
		t.Error("a value sealed two rotations ago still opens")
	}
}

// TestWebhookSecretsResealedOnRotation: Reseal moves every secret to the
// current key, so that deliveries still sign after the next rotation.
func TestWebhookSecretsResealedOnRotation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		k1, k2, k3 := randomKey(t), randomKey(t), randomKey(t)
		ring, err := models.NewKeyRing(k1, nil)
		if err != nil {
			t.Fatal(err)
		}
		sealer, err := models.NewSealer(ring)
		if err != nil {
			t.Fatal(err)
		}
		owner := newUser(t, db, "hooks@example.com")
		p, err := models.NewProjectRepo(db, owner).Create(ctx, models.ProjectInput{Name: "Hooked"})
		if err != nil {
			t.Fatal(err)
		}
		repo := models.NewWebhookRepo(db, sealer, owner)
		_, secret, err := repo.Put(ctx, p.ID, "https://receiver.example.com/hook")
		if err != nil || secret == "" {
			t.Fatalf("Put: %q, %v", secret, err)
		}
		poster := &recordingPoster{}
		d := models.NewWebhookDispatcher(db, sealer, poster, models.WebhookConfig{})
		if err := ring.Set(k2, k1); err != nil {
			t.Fatal(err)
		}
		n, err := d.Reseal(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Reseal = %d, %v; want 1", n, err)
		}
		if n, _ := d.Reseal(ctx); n != 0 {
			t.Errorf("a second Reseal sealed %d again", n)
		}
		if err := ring.Set(k3, k2); err != nil {
			t.Fatal(err)
		}
		res, err := d.Ping(ctx, owner, p.ID)
		if err != nil {
			t.Fatalf("Ping after two rotations: %v", err)
		}
		if res.Class != "" {
			t.Fatalf("Ping result %+v", res)
		}
		body, sig := poster.last()
		if want := models.SignWebhook([]byte(secret), parseT(t, sig), body); sig != want {
			t.Errorf("signed with another secret after two rotations: %q, want %q", sig, want)
		}
		// Another owner cannot ping it.
		if _, err := d.Ping(ctx, newUser(t, db, "other@example.com"), p.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("another owner's Ping: %v, want not found", err)
		}
	})
}

// recordingPoster answers 204 and keeps the last request.
type recordingPoster struct {
	mu   sync.Mutex
	body []byte
	sig  string
}

func (p *recordingPoster) Post(_ context.Context, _ string, h http.Header, body []byte) outbound.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body, p.sig = bytes.Clone(body), h.Get(models.WebhookSignatureHeader)
	return outbound.Result{StatusCode: http.StatusNoContent}
}

func (p *recordingPoster) last() ([]byte, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.body, p.sig
}

// parseT reads the signing time of a signature header.
func parseT(tb testing.TB, sig string) time.Time {
	tb.Helper()
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		tb.Fatalf("signature %q has no time", sig)
	}
	return time.Unix(n, 0)
}

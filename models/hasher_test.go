package models_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/rampart-go/rampart/models"
)

const mib = 1 << 20

// TestPasswordHasherSlotsFromBudget: the number of hashes that may run at
// once is the memory budget over the memory cost of one hash (19 MiB with
// the default parameters), rounded down, and at least one.
func TestPasswordHasherSlotsFromBudget(t *testing.T) {
	libraryDefaults := *argon2id.DefaultParams // 64 MiB a hash
	for _, tc := range []struct {
		name   string
		params argon2id.Params
		budget int64
		slots  int
	}{
		{"default budget", models.DefaultArgon2Params, models.DefaultArgon2MemoryBudget, 6}, // 128 / 19
		{"one hash exactly", models.DefaultArgon2Params, 19 * mib, 1},
		{"just under two", models.DefaultArgon2Params, 38*mib - 1, 1},
		{"two exactly", models.DefaultArgon2Params, 38 * mib, 2},
		{"1 GiB", models.DefaultArgon2Params, 1024 * mib, 53},
		{"less than one hash", models.DefaultArgon2Params, 10 * mib, 1},
		{"zero", models.DefaultArgon2Params, 0, 1},
		{"negative", models.DefaultArgon2Params, -1, 1},
		{"library defaults, 64 MiB each", libraryDefaults, 128 * mib, 2},
	} {
		h := models.NewPasswordHasherWithBudget(tc.params, models.HasherBudget{MemoryBytes: tc.budget, MaxWait: time.Second})
		if got := h.Slots(); got != tc.slots {
			t.Errorf("%s: %d slots, want %d", tc.name, got, tc.slots)
		}
	}
	want := min(6, models.DefaultArgon2Concurrency()) // 128 MiB / 19 MiB, and a core left free
	if got := models.NewPasswordHasher(models.DefaultArgon2Params).Slots(); got != want {
		t.Errorf("NewPasswordHasher: %d slots, want %d", got, want)
	}
	if models.DefaultArgon2MemoryBudget != 128*mib {
		t.Errorf("default budget %d bytes, want 128 MiB", models.DefaultArgon2MemoryBudget)
	}
}

// TestPasswordHasherConcurrencyCap: the CPU cap lowers the slot count the
// memory budget allows, never raises it; zero means no CPU cap. The
// default leaves one core free (GOMAXPROCS - 1, at least one), which is
// what keeps other requests fast during a login flood
// (scripts/flood-login.sh measures it).
func TestPasswordHasherConcurrencyCap(t *testing.T) {
	for _, tc := range []struct {
		name        string
		budget      int64
		concurrency int
		slots       int
	}{
		{"cap below memory", 1024 * mib, 2, 2},
		{"no cap", 1024 * mib, 0, 53},
		{"memory below cap", 38 * mib, 8, 2},
		{"cap of one", models.DefaultArgon2MemoryBudget, 1, 1},
		{"negative cap is no cap", 38 * mib, -1, 2},
	} {
		h := models.NewPasswordHasherWithBudget(models.DefaultArgon2Params, models.HasherBudget{
			MemoryBytes: tc.budget, Concurrency: tc.concurrency, MaxWait: time.Second})
		if got := h.Slots(); got != tc.slots {
			t.Errorf("%s: %d slots, want %d", tc.name, got, tc.slots)
		}
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for procs, want := range map[int]int{1: 1, 2: 1, 4: 3, 16: 15} {
		runtime.GOMAXPROCS(procs)
		if got := models.DefaultArgon2Concurrency(); got != want {
			t.Errorf("GOMAXPROCS %d: default concurrency %d, want %d", procs, got, want)
		}
	}
}

// TestPasswordHasherRefusesWhenNoSlotFreesUp: a call that finds every slot
// busy waits up to maxWait, then gets KindUnavailable with a Retry-After,
// and is counted. Once a slot is free, calls go through again.
func TestPasswordHasherRefusesWhenNoSlotFreesUp(t *testing.T) {
	ctx := context.Background()
	h := models.NewPasswordHasherWithBudget(cheapParams, models.HasherBudget{MemoryBytes: 1, MaxWait: 10 * time.Millisecond})
	if h.Slots() != 1 {
		t.Fatalf("%d slots, want 1", h.Slots())
	}
	hash, err := h.Hash(ctx, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if h.Refusals() != 0 {
		t.Fatalf("%d refusals before any contention", h.Refusals())
	}

	release := h.HoldSlotsForTest()
	_, hashErr := h.Hash(ctx, testPassword)
	_, _, verifyErr := h.Verify(ctx, testPassword, hash)
	for name, err := range map[string]error{"Hash": hashErr, "Verify": verifyErr} {
		e := asError(t, err)
		if e.Kind != models.KindUnavailable || e.RetryAfter <= 0 || e.Detail == "" {
			t.Errorf("%s with every slot busy: %v (RetryAfter %v), want KindUnavailable with a Retry-After and a detail", name, e, e.RetryAfter)
		}
	}
	if got := h.Refusals(); got != 2 {
		t.Errorf("Refusals() = %d, want 2", got)
	}
	verified := h.Verifications()
	release()

	if match, _, err := h.Verify(ctx, testPassword, hash); err != nil || !match {
		t.Errorf("Verify with a free slot: %v, %v", match, err)
	}
	if h.Verifications() != verified+1 || h.Refusals() != 2 {
		t.Errorf("verifications %d (want %d), refusals %d (want 2)", h.Verifications(), verified+1, h.Refusals())
	}
}

// TestPasswordHasherWaitsForASlot: a caller that waits gets the slot as
// soon as it is released, within maxWait, and is not refused.
func TestPasswordHasherWaitsForASlot(t *testing.T) {
	h := models.NewPasswordHasherWithBudget(cheapParams, models.HasherBudget{MemoryBytes: 1, MaxWait: time.Hour})
	release := h.HoldSlotsForTest()
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), testPassword)
		done <- err
	}()
	release()
	if err := <-done; err != nil {
		t.Errorf("Hash after the slot was released: %v", err)
	}
	if h.Refusals() != 0 {
		t.Errorf("%d refusals", h.Refusals())
	}
}

// TestPasswordHasherCancelledContextReturns: with a long maxWait, a waiting
// call still returns as soon as its request is cancelled; it is not counted
// as a refusal for lack of slots.
func TestPasswordHasherCancelledContextReturns(t *testing.T) {
	h := models.NewPasswordHasherWithBudget(cheapParams, models.HasherBudget{MemoryBytes: 1, MaxWait: time.Hour})
	release := h.HoldSlotsForTest()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := h.Verify(ctx, testPassword, "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
		done <- err
	}()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second): // a guard against hanging, not a measurement
		t.Fatal("a cancelled call is still waiting for a slot")
	}
	if models.KindOf(err) != models.KindUnavailable || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: %v, want KindUnavailable caused by context.Canceled", err)
	}
	if h.Refusals() != 0 || h.Verifications() != 0 {
		t.Errorf("refusals %d, verifications %d; want 0 and 0", h.Refusals(), h.Verifications())
	}
}

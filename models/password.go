package models

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/trustelem/zxcvbn/frequency"
	"golang.org/x/text/unicode/norm"
)

// DefaultArgon2Params are the Argon2id parameters for new hashes: the OWASP
// Password Storage Cheat Sheet minimum (m=19456 KiB, t=2, p=1), with a
// 16-byte random salt and a 32-byte key. About 20-40 ms on one core; the
// memory cost is what defeats GPU cracking. Stored hashes carry their own
// parameters, so raising these later rehashes each user at the next login.
var DefaultArgon2Params = argon2id.Params{
	Memory:      19 * 1024,
	Iterations:  2,
	Parallelism: 1,
	SaltLength:  16,
	KeyLength:   32,
}

// Password length bounds, counted in Unicode code points after NFC. The upper
// bound stops long-password denial of service while accepting any passphrase.
const (
	PasswordMinLength = 12
	PasswordMaxLength = 128
)

// PasswordHasher hashes and verifies passwords with Argon2id. Every call
// allocates the whole memory cost (19 MiB here; 64 MiB with the library's
// own defaults) and keeps one core busy for its whole run, so concurrent
// hashing is capped twice: by a memory budget, so a flood of logins cannot
// exhaust memory, and by a CPU share, so it cannot starve every other
// request of the cores. Excess calls queue briefly and are then refused
// with 503 and Retry-After.
type PasswordHasher struct {
	params   argon2id.Params
	slots    chan struct{}
	maxWait  time.Duration
	verified atomic.Uint64
	busy     atomic.Uint64
}

// HasherBudget bounds the hashing a PasswordHasher does at once.
type HasherBudget struct {
	// MemoryBytes is the memory all running hashes may hold together:
	// at most MemoryBytes / params.Memory hashes run at once (at least one).
	MemoryBytes int64
	// Concurrency caps the hashes running at once further; zero means no
	// cap beyond memory. DefaultArgon2Concurrency leaves a core free.
	Concurrency int
	// MaxWait is how long a call waits for a slot before it is refused.
	MaxWait time.Duration
}

// Argon2 admission defaults: 128 MiB of hashing memory at most, and two
// seconds of waiting for a slot.
const (
	DefaultArgon2MemoryBudget = 128 << 20
	DefaultArgon2MaxWait      = 2 * time.Second
)

// DefaultArgon2Concurrency is how many hashes may run at once by default:
// one fewer than the cores Go schedules on (GOMAXPROCS), at least one. Each
// hash (p=1) keeps one core busy, so on a machine with two or more cores a
// login flood leaves at least one core to every other request; measured by
// scripts/flood-login.sh.
func DefaultArgon2Concurrency() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

// DefaultHasherBudget is the budget of NewPasswordHasher.
func DefaultHasherBudget() HasherBudget {
	return HasherBudget{MemoryBytes: DefaultArgon2MemoryBudget, Concurrency: DefaultArgon2Concurrency(), MaxWait: DefaultArgon2MaxWait}
}

// NewPasswordHasher returns a hasher using params with the default budget.
func NewPasswordHasher(params argon2id.Params) *PasswordHasher {
	return NewPasswordHasherWithBudget(params, DefaultHasherBudget())
}

// NewPasswordHasherWithBudget returns a hasher that runs at most
// min(budget.MemoryBytes / memory cost, budget.Concurrency) hashes at once
// (at least one), and refuses a call that waited budget.MaxWait for a slot.
func NewPasswordHasherWithBudget(params argon2id.Params, budget HasherBudget) *PasswordHasher {
	n := max(int(budget.MemoryBytes/(int64(params.Memory)*1024)), 1)
	if budget.Concurrency > 0 {
		n = min(n, budget.Concurrency)
	}
	return &PasswordHasher{params: params, slots: make(chan struct{}, n), maxWait: budget.MaxWait}
}

// Slots is how many hashes may run at once.
func (h *PasswordHasher) Slots() int { return cap(h.slots) }

// errHasherBusy answers a call that found no hashing slot in time.
var errHasherBusy = &Error{Kind: KindUnavailable, RetryAfter: time.Second,
	Detail: "The server is busy checking passwords; retry in a second."}

func (h *PasswordHasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(h.maxWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		h.busy.Add(1)
		return errHasherBusy
	case <-ctx.Done():
		return &Error{Kind: KindUnavailable, RetryAfter: time.Second, Cause: ctx.Err()}
	}
}

// Refusals counts calls refused because no slot freed up in time.
func (h *PasswordHasher) Refusals() uint64 { return h.busy.Load() }

func (h *PasswordHasher) release() { <-h.slots }

// NormalizePassword returns the NFC form of a password, the form that is
// hashed and checked, so that the same passphrase typed on two systems that
// compose accents differently still matches.
func NormalizePassword(pw string) string { return norm.NFC.String(pw) }

// Hash returns the encoded Argon2id hash of the NFC form of password.
func (h *PasswordHasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	hash, err := argon2id.CreateHash(NormalizePassword(password), &h.params)
	if err != nil {
		return "", Internal(err)
	}
	return hash, nil
}

// Verify reports whether password matches the encoded hash, and whether the
// hash was made with other parameters than the current ones and should be
// replaced. The comparison is constant-time.
func (h *PasswordHasher) Verify(ctx context.Context, password, hash string) (match, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	h.verified.Add(1)
	match, params, err := argon2id.CheckHash(NormalizePassword(password), hash)
	if err != nil {
		return false, false, Internal(err)
	}
	return match, match && *params != h.params, nil
}

// Verifications counts the Argon2id verifications run so far. Tests use it
// to show that a login for an unknown e-mail does the same work as one with
// a wrong password; it is also a useful metric.
func (h *PasswordHasher) Verifications() uint64 { return h.verified.Load() }

// PasswordPolicy decides whether a new password is acceptable: length
// 12-128 after NFC, not a known common or breached password, and not the
// account's own e-mail or name. There are no composition rules (NIST 800-63B,
// ASVS 6.2): they make passwords harder to remember, not to guess.
type PasswordPolicy struct {
	common map[string]struct{}
}

// CommonPasswordsSource names where the blocklist comes from, for the README
// and the OpenAPI document.
const CommonPasswordsSource = "github.com/trustelem/zxcvbn frequency list \"passwords\" " +
	"(zxcvbn's list of the 30,000 most common passwords from leaked-password corpora; MIT licence)"

// NewPasswordPolicy builds the policy and its blocklist. The list comes from
// the zxcvbn Go port's embedded frequency lists (MIT): ~30,000 passwords
// most often seen in breaches, compared case-insensitively.
func NewPasswordPolicy() (*PasswordPolicy, error) {
	list := frequency.FrequencyLists["passwords"]
	if len(list) < 10000 {
		return nil, errors.New("common-password list is missing or too short")
	}
	common := make(map[string]struct{}, len(list))
	for _, pw := range list {
		common[strings.ToLower(pw)] = struct{}{}
	}
	return &PasswordPolicy{common: common}, nil
}

// CommonPasswordCount is the size of the blocklist.
func (p *PasswordPolicy) CommonPasswordCount() int { return len(p.common) }

// Check returns "" when password is acceptable for an account with the given
// e-mail and display name, or a client-safe message saying which rule it
// breaks. It never repeats the password.
func (p *PasswordPolicy) Check(password, email, displayName string) string {
	if !utf8.ValidString(password) {
		return "must be valid UTF-8"
	}
	pw := NormalizePassword(password)
	switch n := utf8.RuneCountInString(pw); {
	case n < PasswordMinLength:
		return "must be at least 12 characters"
	case n > PasswordMaxLength:
		return "must be at most 128 characters"
	}
	lower := strings.ToLower(pw)
	if _, bad := p.common[lower]; bad {
		return "is too common: it appears in lists of breached passwords"
	}
	// Context-specific words (ASVS 6.2.11): the account's own identifiers.
	local, _, _ := strings.Cut(strings.ToLower(email), "@")
	for _, word := range []string{strings.ToLower(email), local, strings.ToLower(NormalizeText(displayName))} {
		if word != "" && lower == word {
			return "must not be your e-mail address or name"
		}
	}
	return ""
}

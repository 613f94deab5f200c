package models_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/trustelem/zxcvbn/frequency"
	"golang.org/x/text/unicode/norm"

	"github.com/rampart-go/rampart/models"
)

// cheapParams make hashes that cost next to nothing, for tests about the
// hasher's mechanics rather than its strength.
var cheapParams = argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// runes returns the first n code points of an endless, uncommon passphrase.
func runes(n int) string {
	return string([]rune(strings.Repeat("plum ", n/5+1))[:n])
}

// decomposedE is "é" as two code points: e and a combining acute accent.
const decomposedE = "e\u0301"

func TestPasswordPolicyLength(t *testing.T) {
	policy := newPolicy(t)
	if models.PasswordMinLength != 12 || models.PasswordMaxLength != 128 {
		t.Fatalf("bounds %d-%d, want 12-128", models.PasswordMinLength, models.PasswordMaxLength)
	}
	cases := []struct {
		name     string
		password string
		ok       bool
	}{
		{"empty", "", false},
		{"11 characters", runes(11), false},
		{"12 characters", runes(12), true},
		{"128 characters", runes(128), true},
		{"129 characters", runes(129), false},
		{"1 MiB", runes(1 << 20), false},
		// Counted in code points after NFC: each decomposed é is two code
		// points but one character.
		{"11 decomposed characters (22 code points)", strings.Repeat(decomposedE, 11), false},
		{"12 decomposed characters (24 code points)", strings.Repeat(decomposedE, 12), true},
		{"128 decomposed characters (256 code points)", strings.Repeat(decomposedE, 128), true},
		{"129 decomposed characters", strings.Repeat(decomposedE, 129), false},
		// Counted in code points, not bytes: 12 three-byte characters.
		{"12 CJK characters (36 bytes)", "日本語のパスフレーズです", true},
		{"11 four-byte emoji", strings.Repeat("🍑", 11), false},
		{"not UTF-8", runes(20) + "\xff", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := policy.Check(tc.password, "someone@example.com", "Someone")
			if (msg == "") != tc.ok {
				t.Errorf("Check = %q, want ok=%v", msg, tc.ok)
			}
			if msg != "" && tc.password != "" && strings.Contains(msg, tc.password) {
				t.Errorf("the message repeats the password")
			}
		})
	}
	// The decomposed test strings really are longer before NFC.
	if d := strings.Repeat(decomposedE, 12); utf8.RuneCountInString(d) != 24 || utf8.RuneCountInString(norm.NFC.String(d)) != 12 {
		t.Fatal("the decomposed test string is not what it claims")
	}
}

func TestPasswordPolicyCommonPasswords(t *testing.T) {
	policy := newPolicy(t)
	if n := policy.CommonPasswordCount(); n < 10000 {
		t.Fatalf("the blocklist has %d entries, want at least 10,000", n)
	}
	list := frequency.FrequencyLists["passwords"]
	for _, pw := range []string{"1qaz2wsx3edc", "qwerty123456"} {
		if !slices.Contains(list, pw) || utf8.RuneCountInString(pw) < 12 {
			t.Fatalf("test premise: %q is not a 12+ character entry of the list", pw)
		}
		for _, variant := range []string{pw, strings.ToUpper(pw), strings.ToUpper(pw[:1]) + pw[1:]} {
			if msg := policy.Check(variant, "someone@example.com", "Someone"); msg == "" {
				t.Errorf("common password %q accepted", variant)
			}
		}
	}
}

func TestPasswordPolicyContextWords(t *testing.T) {
	policy := newPolicy(t)
	const email, name = "margaret.hamilton@example.com", "Margaret Hamilton"
	for _, pw := range []string{
		email,
		"MARGARET.HAMILTON@EXAMPLE.COM",
		"margaret.hamilton", // the local part
		"Margaret.Hamilton",
		name,
		"margaret hamilton",
	} {
		if msg := policy.Check(pw, email, name); msg == "" {
			t.Errorf("%q accepted for %s / %s", pw, email, name)
		}
	}
	// Only the account's own words are refused.
	if msg := policy.Check("margaret.hamilton", "someone@example.com", "Someone"); msg != "" {
		t.Errorf("another account's e-mail refused: %s", msg)
	}
}

func TestPasswordPolicyHasNoCompositionRules(t *testing.T) {
	policy := newPolicy(t)
	for _, pw := range []string{
		"correct horse battery staple",
		"purple monkey dishwasher river",
		"allinlowercasewithoutdigitsorsymbols",
		"1234567890123459876", // digits only
	} {
		if msg := policy.Check(pw, "someone@example.com", "Someone"); msg != "" {
			t.Errorf("%q refused: %s", pw, msg)
		}
	}
}

func TestPasswordHasher(t *testing.T) {
	ctx := context.Background()
	h := models.NewPasswordHasher(models.DefaultArgon2Params)
	const pw = "crème brûlée à la française"
	composed, decomposed := norm.NFC.String(pw), norm.NFD.String(pw)
	if composed == decomposed {
		t.Fatal("test premise: the two spellings are the same")
	}

	hash, err := h.Hash(ctx, composed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, defaultHashPrefix) || strings.Contains(hash, pw) {
		t.Errorf("hash %q", hash)
	}
	cases := []struct {
		name, password string
		match          bool
	}{
		{"same spelling", composed, true},
		{"decomposed spelling", decomposed, true},
		{"wrong password", "crème brûlée à la francaise", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		match, rehash, err := h.Verify(ctx, tc.password, hash)
		if err != nil || match != tc.match || rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want match=%v, no rehash", tc.name, match, rehash, err, tc.match)
		}
	}
	// And the other way round: a hash of the decomposed spelling.
	hash2, err := h.Hash(ctx, decomposed)
	if err != nil {
		t.Fatal(err)
	}
	if match, _, err := h.Verify(ctx, composed, hash2); err != nil || !match {
		t.Errorf("composed against the hash of the decomposed spelling: %v, %v", match, err)
	}

	// A hash made with other parameters matches and asks to be replaced,
	// but only when the password is right.
	old, err := models.NewPasswordHasher(cheapParams).Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if match, rehash, err := h.Verify(ctx, pw, old); err != nil || !match || !rehash {
		t.Errorf("old parameters: %v, %v, %v; want match and rehash", match, rehash, err)
	}
	if match, rehash, err := h.Verify(ctx, "wrong password!", old); err != nil || match || rehash {
		t.Errorf("old parameters, wrong password: %v, %v, %v", match, rehash, err)
	}
	// A stored value that is no Argon2id hash is a server fault, not a
	// mismatch.
	if _, _, err := h.Verify(ctx, pw, "plaintext"); models.KindOf(err) != models.KindInternal || err == nil {
		t.Errorf("Verify against garbage: %v, want an internal error", err)
	}
}

func TestPasswordHasherConcurrencyLimitDoesNotDeadlock(t *testing.T) {
	ctx := context.Background()
	h := models.NewPasswordHasher(cheapParams)
	n := 4*runtime.GOMAXPROCS(0) + 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			hash, err := h.Hash(ctx, testPassword)
			if err != nil {
				errs <- err
				return
			}
			if match, _, err := h.Verify(ctx, testPassword, hash); err != nil || !match {
				errs <- errors.Join(errors.New("verify failed"), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := h.Verifications(); got != uint64(n) {
		t.Errorf("%d verifications counted, want %d", got, n)
	}
}

func TestPasswordHasherCancelledWhileWaiting(t *testing.T) {
	h := models.NewPasswordHasher(cheapParams)
	hash, err := h.Hash(context.Background(), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	release := h.HoldSlotsForTest() // every slot is busy: callers must wait

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() {
		_, err := h.Hash(ctx, testPassword)
		errs <- err
	}()
	go func() {
		_, _, err := h.Verify(ctx, testPassword, hash)
		errs <- err
	}()
	cancel()
	for range 2 {
		err := <-errs
		if models.KindOf(err) != models.KindUnavailable || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled while waiting: %v, want KindUnavailable caused by context.Canceled", err)
		}
	}
	if got := h.Verifications(); got != 0 {
		t.Errorf("a verification that never ran was counted (%d)", got)
	}

	// The abandoned calls took no slot: once the slots are free, work goes on.
	release()
	if match, _, err := h.Verify(context.Background(), testPassword, hash); err != nil || !match {
		t.Errorf("after release: %v, %v", match, err)
	}
}

package rules_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/rules"
)

// check is one call of a Check function and what it must return: an empty
// want means nil, otherwise the exact Error() text.
type check struct {
	name string
	err  error
	want string
}

func runChecks(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			assertFieldError(t, c.err, c.want)
		})
	}
}

// assertFieldError checks that err is nil when want is empty, and otherwise a
// *rules.FieldError matching rules.ErrInvalid whose text is want.
func assertFieldError(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got error %q, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got nil, want error %q", want)
	}
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, rules.ErrInvalid) {
		t.Errorf("errors.Is(%q, rules.ErrInvalid) = false, want true", err)
	}
	var fe *rules.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %T is not a *rules.FieldError", err)
	}
	if field, _, _ := strings.Cut(want, ": "); fe.Field != field {
		t.Errorf("Field = %q, want %q", fe.Field, field)
	}
}

func TestCheckString(t *testing.T) {
	t.Parallel()
	id := rules.String{Required: true, MaxLen: 64, ID: true}
	title := rules.String{Required: true, MaxLen: 200}
	runChecks(t, []check{
		{"required empty", rules.CheckString("activity_id", "", id), "activity_id: is required"},
		{"optional empty", rules.CheckString("note", "", rules.String{MinLen: 2, MaxLen: 10}), ""},
		{"no rules", rules.CheckString("free", "anything at all ✓", rules.String{}), ""},
		{"seed id", rules.CheckString("activity_id", "act_123456", id), ""},
		{"id charset all allowed", rules.CheckString("id", "AZaz09_-.:", id), ""},
		{"id at max_len", rules.CheckString("activity_id", strings.Repeat("a", 64), id), ""},
		{"id over max_len", rules.CheckString("activity_id", strings.Repeat("a", 65), id),
			"activity_id: must be at most 64 characters, got 65"},
		{"id with space", rules.CheckString("user_id", "user 1", id),
			`user_id: has ' ' at offset 4; ids may hold only letters, digits, '_', '-', '.' and ':'`},
		{"id with slash", rules.CheckString("user_id", "a/b", id),
			`user_id: has '/' at offset 1; ids may hold only letters, digits, '_', '-', '.' and ':'`},
		{"id with non-ASCII", rules.CheckString("user_id", "user_用户", id),
			`user_id: has '用' at offset 5; ids may hold only letters, digits, '_', '-', '.' and ':'`},
		{"id with invalid UTF-8", rules.CheckString("user_id", "ab\xff", id),
			"user_id: has '\ufffd' at offset 2; ids may hold only letters, digits, '_', '-', '.' and ':'"},
		// 周末爬山活动 is 6 code points but 18 bytes: max_len counts code points.
		{"chinese within max_len", rules.CheckString("title", "周末爬山活动", rules.String{MaxLen: 6}), ""},
		{"chinese over max_len", rules.CheckString("title", "周末爬山活动!", rules.String{MaxLen: 6}),
			"title: must be at most 6 characters, got 7"},
		{"chinese title at 200", rules.CheckString("title", strings.Repeat("山", 200), title), ""},
		{"chinese title at 201", rules.CheckString("title", strings.Repeat("山", 201), title),
			"title: must be at most 200 characters, got 201"},
		{"emoji is one code point", rules.CheckString("note", "🏔", rules.String{MaxLen: 1}), ""},
		{"min_len short", rules.CheckString("note", "a", rules.String{MinLen: 2, MaxLen: 10}),
			"note: must be at least 2 characters, got 1"},
		// Two bytes, one code point: min_len must not count bytes.
		{"min_len counts code points", rules.CheckString("note", "é", rules.String{MinLen: 2}),
			"note: must be at least 2 characters, got 1"},
		{"min_len without max_len", rules.CheckString("note", "山山", rules.String{MinLen: 2}), ""},
		{"min_len met", rules.CheckString("note", "ok", rules.String{MinLen: 2, MaxLen: 10}), ""},
	})
}

func TestCheckTimestamp(t *testing.T) {
	t.Parallel()
	runChecks(t, []check{
		{"nil required", rules.CheckTimestamp("created_at", nil, true), "created_at: is required"},
		{"nil optional", rules.CheckTimestamp("created_at", nil, false), ""},
		{"valid", rules.CheckTimestamp("created_at", &timestamppb.Timestamp{Seconds: 1704103200}, true), ""},
		{"zero value is set", rules.CheckTimestamp("created_at", &timestamppb.Timestamp{}, true), ""},
		{"max valid is far in the future", rules.CheckTimestamp("created_at", &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999999999}, true),
			"created_at: is 9999-12-31T23:59:59.999999999Z, more than 24h0m0s ahead of the clock"},
	})
	// The reason's tail comes from timestamppb and is not ours to pin down.
	for _, tc := range []struct {
		name string
		ts   *timestamppb.Timestamp
	}{
		{"negative nanos", &timestamppb.Timestamp{Seconds: 1, Nanos: -1}},
		{"nanos too large", &timestamppb.Timestamp{Seconds: 1, Nanos: 1e9}},
		{"after year 9999", &timestamppb.Timestamp{Seconds: 253402300800}},
		{"before year 1", &timestamppb.Timestamp{Seconds: -62135596801}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rules.CheckTimestamp("joined_at", tc.ts, false)
			if err == nil {
				t.Fatal("got nil, want an error")
			}
			if !errors.Is(err, rules.ErrInvalid) {
				t.Errorf("errors.Is(%q, rules.ErrInvalid) = false", err)
			}
			if want := "joined_at: is not a valid timestamp: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err, want)
			}
		})
	}
}

func TestCheckUint(t *testing.T) {
	t.Parallel()
	runChecks(t, []check{
		{"zero required", rules.CheckUint("count", 0, rules.Uint{Required: true}), "count: is required"},
		{"zero optional", rules.CheckUint("count", 0, rules.Uint{Max: 100}), ""},
		{"at max", rules.CheckUint("count", 100, rules.Uint{Max: 100}), ""},
		{"over max", rules.CheckUint("count", 101, rules.Uint{Max: 100}), "count: must be at most 100, got 101"},
		{"unbounded", rules.CheckUint("count", ^uint64(0), rules.Uint{}), ""},
		{"required and set", rules.CheckUint("count", 1, rules.Uint{Required: true, Max: 1}), ""},
	})
}

func TestCheckMessage(t *testing.T) {
	t.Parallel()
	runChecks(t, []check{
		{"unset required", rules.CheckMessage("detail", false, true), "detail: is required"},
		{"unset optional", rules.CheckMessage("detail", false, false), ""},
		{"set required", rules.CheckMessage("detail", true, true), ""},
	})
}

func TestFieldError(t *testing.T) {
	t.Parallel()
	err := error(&rules.FieldError{Field: "title", Reason: "is required"})
	if got, want := err.Error(), "title: is required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, rules.ErrInvalid) {
		t.Error("errors.Is(FieldError, ErrInvalid) = false, want true")
	}
	if errors.Is(err, errors.New("invalid field")) {
		t.Error("errors.Is matches a look-alike sentinel, want only ErrInvalid")
	}
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.Is(wrapped, rules.ErrInvalid) {
		t.Error("errors.Is(wrapped FieldError, ErrInvalid) = false, want true")
	}
}

// TestMaxFutureSkew changes the process-wide bound, so it does not run in
// parallel with the other tests; it restores the default when it ends.
func TestMaxFutureSkew(t *testing.T) {
	if got := rules.MaxFutureSkew(); got != 24*time.Hour {
		t.Fatalf("MaxFutureSkew() = %v, want the default of 24h", got)
	}
	t.Cleanup(func() { rules.SetMaxFutureSkew(rules.DefaultMaxFutureSkew) })
	at := func(d time.Duration) error {
		return rules.CheckTimestamp("left_at", timestamppb.New(time.Now().Add(d)), true)
	}
	wantSkewError := func(t *testing.T, err error, bound string) {
		t.Helper()
		if err == nil || !errors.Is(err, rules.ErrInvalid) || !strings.HasPrefix(err.Error(), "left_at: is ") ||
			!strings.HasSuffix(err.Error(), ", more than "+bound+" ahead of the clock") {
			t.Errorf("err = %v, want one saying left_at is more than %s ahead", err, bound)
		}
	}
	if err := at(23 * time.Hour); err != nil {
		t.Errorf("23 h ahead with the default bound: %v", err)
	}
	if err := at(-100 * 365 * 24 * time.Hour); err != nil {
		t.Errorf("a century ago: %v", err)
	}
	wantSkewError(t, at(25*time.Hour), "24h0m0s")

	if prev := rules.SetMaxFutureSkew(time.Hour); prev != rules.DefaultMaxFutureSkew {
		t.Errorf("SetMaxFutureSkew returned %v, want the previous bound", prev)
	}
	if err := at(50 * time.Minute); err != nil {
		t.Errorf("50 min ahead with a 1 h bound: %v", err)
	}
	wantSkewError(t, at(2*time.Hour), "1h0m0s")

	rules.SetMaxFutureSkew(0)
	if err := rules.CheckTimestamp("left_at", &timestamppb.Timestamp{Seconds: 253402300799}, true); err != nil {
		t.Errorf("year 9999 without a bound: %v", err)
	}
}

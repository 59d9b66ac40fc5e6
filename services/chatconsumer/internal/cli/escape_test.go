package cli

import "testing"

func TestTermSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"act_123456 周末爬山活动 ok", "act_123456 周末爬山活动 ok"},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{"\u009b31m", `\u009b31m`},
		{"abc\u202edef", `abc\u202edef`},
		{"bad \xff byte", `bad \xff byte`},
		{"del\x7f", `del\x7f`},
		{"wide\u3000space", "wide\u3000space"},
		{`back\slash`, `back\slash`},
	}
	for _, tt := range tests {
		if got := termSafe(tt.in); got != tt.want {
			t.Errorf("termSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

package handlers

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestNoticeTemplateFillsAsReplacer holds the compiled templates to what
// strings.NewReplacer, which filled notices before, makes of them.
func TestNoticeTemplateFillsAsReplacer(t *testing.T) {
	templates := []string{
		"",
		"plain",
		"{title}",
		"活动群聊「{title}」已创建，你是群主。",
		"{user_id} joined {title} ({group_name}) of {activity_id}",
		"{{user_id}}{user_id{title}}{",
		"{activity_id}{activity_id}{unknown}{group_name",
		"{user_ID} { title} {title}{title}",
	}
	values := [][4]string{
		{"act_1", "u_2", "Hiking", "Hiking"},
		{"{title}", "{user_id}", "{group_name}", "{group_name}"},
		{"", "", "", ""},
	}
	for _, tmpl := range templates {
		compiled := compileNotice(tmpl)
		for _, v := range values {
			want := strings.NewReplacer(
				"{activity_id}", v[0], "{user_id}", v[1], "{title}", v[2], "{group_name}", v[3],
			).Replace(tmpl)
			if got := compiled.fill(&v); got != want {
				t.Errorf("fill(%q, %q) = %q, want %q", tmpl, v, got, want)
			}
		}
	}
}

// TestNoticeTextIsCut checks that a notice longer than the chat service
// stores is cut at a rune, not a byte.
func TestNoticeTextIsCut(t *testing.T) {
	got := noticeText(compileNotice("「{title}」"), "a", "u", strings.Repeat("群", maxNoticeRunes))
	if n := utf8.RuneCountInString(got); n != maxNoticeRunes || !utf8.ValidString(got) || !strings.HasPrefix(got, "「群") {
		t.Errorf("notice of %d runes, valid %v, want %d", n, utf8.ValidString(got), maxNoticeRunes)
	}
	short := noticeText(compileNotice("{title}"), "a", "u", strings.Repeat("x", maxNoticeRunes))
	if len(short) != maxNoticeRunes {
		t.Errorf("notice of exactly %d runes cut to %d", maxNoticeRunes, len(short))
	}
}

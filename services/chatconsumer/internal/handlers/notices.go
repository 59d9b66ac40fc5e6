package handlers

import (
	"strings"
	"unicode/utf8"
)

// noticeFields are the placeholders of notice templates, in the order of
// the values noticeTemplate.fill takes.
var noticeFields = [...]string{"{activity_id}", "{user_id}", "{title}", "{group_name}"}

// noticeTemplate is a notice text cut at its placeholders once, so that
// filling it for an event is one allocation of the notice. It fills as
// strings.NewReplacer with the placeholders and their values would: left
// to right, the values themselves never scanned for placeholders.
type noticeTemplate []noticePart

// noticePart is literal text followed by the placeholder noticeFields[field],
// or by nothing when field is -1.
type noticePart struct {
	text  string
	field int
}

func compileNotice(template string) noticeTemplate {
	var t noticeTemplate
	literal := 0
	for i := 0; i < len(template); i++ {
		if template[i] != '{' {
			continue
		}
		for f, name := range noticeFields {
			if strings.HasPrefix(template[i:], name) {
				t = append(t, noticePart{text: template[literal:i], field: f})
				literal = i + len(name)
				i = literal - 1
				break
			}
		}
	}
	return append(t, noticePart{text: template[literal:], field: -1})
}

// fill returns the notice with the placeholders replaced by values, cut to
// the longest text the chat service stores.
func (t noticeTemplate) fill(values *[len(noticeFields)]string) string {
	n := 0
	for _, p := range t {
		n += len(p.text)
		if p.field >= 0 {
			n += len(values[p.field])
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, p := range t {
		sb.WriteString(p.text)
		if p.field >= 0 {
			sb.WriteString(values[p.field])
		}
	}
	s := sb.String()
	if len(s) > maxNoticeRunes && utf8.RuneCountInString(s) > maxNoticeRunes {
		s = string([]rune(s)[:maxNoticeRunes])
	}
	return s
}

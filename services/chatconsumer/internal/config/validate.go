package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/internal/configfile"
)

// maxNoticeLen is the longest notice the chat service stores.
const maxNoticeLen = 4000

// Validate reports every value out of range, each as a *KeyError (in a
// configfile.Errors when there are several), one problem per key.
func (c *Config) Validate() error {
	var v validator
	v.check("Name", c.Name != "", "must not be empty")
	v.oneOf("Mode", c.Mode, ModeDev, ModeProd)
	v.oneOf("Log.Level", c.Log.Level, "debug", "info", "warn", "error")

	v.positive("ChatRpc.Timeout", c.ChatRpc.Timeout)
	if !c.Embedded.Chat.Enabled {
		v.url("ChatRpc.Endpoint", c.ChatRpc.Endpoint, "http", "https")
	}

	if !c.Embedded.Nats.Enabled {
		if c.Nats.Url == "" {
			v.fail("Nats.Url", "must not be empty unless Embedded.Nats.Enabled is true")
		}
		for _, u := range strings.Split(c.Nats.Url, ",") {
			v.url("Nats.Url", strings.TrimSpace(u), "nats", "tls", "ws", "wss")
		}
	}
	v.check("Nats.User", c.Nats.User == "" || c.Nats.CredsFile == "", "use either CredsFile or User and Password, not both")
	v.check("Nats.Password", c.Nats.Password == "" || c.Nats.User != "", "needs Nats.User")
	v.check("Nats.TLS.KeyFile", (c.Nats.TLS.CertFile == "") == (c.Nats.TLS.KeyFile == ""), "CertFile and KeyFile go together")

	m := c.Messaging
	v.check("Messaging.ServiceName", m.ServiceName != "" && !strings.ContainsAny(m.ServiceName, " \t*>/\\"), "must be non-empty without spaces, '*', '>' or slashes")
	switch {
	case m.MetricsListenOn != "":
		v.listen("Messaging.MetricsListenOn", m.MetricsListenOn)
	case m.EnableMetrics:
		v.fail("Messaging.MetricsListenOn", "must be host:port when EnableMetrics is true")
	}
	v.between("Messaging.Concurrency", m.Concurrency, 1, 10000)
	v.check("Messaging.AckWait", m.AckWait >= time.Second, fmt.Sprintf("must be >= 1s, got %s", m.AckWait))
	v.between("Messaging.MaxAckPending", m.MaxAckPending, 1, 1_000_000)
	v.between("Messaging.Replicas", m.Replicas, 1, 5)
	v.positive("Messaging.DrainTimeout", m.DrainTimeout)

	v.retry(m.Retry)

	// Every notice text, found by reflection so that a notice added to
	// Notices (and to handlers.Notices, which must match it) is checked
	// without a list to keep.
	nv := reflect.ValueOf(c.Notices)
	for i := range nv.NumField() {
		key := "Notices." + nv.Type().Field(i).Tag.Get("yaml")
		n := utf8.RuneCountInString(nv.Field(i).String())
		v.check(key, n > 0 && n <= maxNoticeLen, fmt.Sprintf("must hold 1 to %d characters, got %d", maxNoticeLen, n))
	}

	e := c.Embedded
	if e.Nats.Enabled || e.Chat.Enabled {
		v.check("Embedded", c.Mode == ModeDev, "embedded services run only in Mode dev")
		v.check("Embedded.DataDir", e.DataDir != "", "must not be empty")
	}
	if e.Nats.Enabled {
		v.listen("Embedded.Nats.Listen", e.Nats.Listen)
		if e.Nats.HttpListen != "" {
			v.listen("Embedded.Nats.HttpListen", e.Nats.HttpListen)
		}
		v.check("Embedded.Nats.StoreDir", e.Nats.StoreDir != "", "must not be empty")
		v.oneOf("Embedded.Nats.Sync", e.Nats.Sync, SyncInterval, SyncAlways)
		if e.Nats.Sync == SyncInterval {
			v.positive("Embedded.Nats.SyncInterval", e.Nats.SyncInterval)
		}
	}
	if e.Chat.Enabled {
		v.listen("Embedded.Chat.ListenOn", e.Chat.ListenOn)
		v.oneOf("Embedded.Chat.Database.Driver", e.Chat.Database.Driver, "sqlite", "postgres")
		v.check("Embedded.Chat.Database.DSN", e.Chat.Database.DSN != "", "must not be empty")
	}
	return v.err()
}

// validator keeps the first failed check of each key.
type validator struct {
	errs configfile.Errors
	seen map[string]bool
}

func (v *validator) fail(key, msg string) {
	base, _, _ := strings.Cut(key, " ")
	if v.seen[base] {
		return
	}
	if v.seen == nil {
		v.seen = map[string]bool{}
	}
	v.seen[base] = true
	v.errs = append(v.errs, &KeyError{Key: key, Err: errors.New(msg)})
}

func (v *validator) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return v.errs[0]
	}
	return v.errs
}

func (v *validator) check(key string, ok bool, msg string) {
	if !ok {
		v.fail(key, msg)
	}
}

func (v *validator) oneOf(key, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.fail(key, fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), got))
}

func (v *validator) between(key string, got, lo, hi int) {
	v.check(key, lo <= got && got <= hi, fmt.Sprintf("must be between %d and %d, got %d", lo, hi, got))
}

func (v *validator) positive(key string, d time.Duration) {
	v.check(key, d > 0, fmt.Sprintf("must be a positive duration, got %s", d))
}

func (v *validator) listen(key, addr string) {
	_, port, err := ListenPort(addr)
	switch {
	case err != nil:
		v.fail(key, fmt.Sprintf("must be host:port, got %q", addr))
	case port < -1 || port > 65535:
		v.fail(key, fmt.Sprintf("port must be between 0 and 65535, got %d", port))
	}
}

func (v *validator) url(key, raw string, schemes ...string) {
	if raw == "" {
		v.fail(key, "must not be empty")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		v.fail(key, fmt.Sprintf("must be a URL such as %s://host:port, got %q", schemes[0], redactURL(raw)))
		return
	}
	v.oneOf(key+" scheme", u.Scheme, schemes...)
}

// redactURL hides the password of a URL in error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			return "***" + raw[at:]
		}
		return raw
	}
	return u.Redacted()
}

// RedactURLs hides the passwords in a comma-separated list of URLs, for
// logs and error messages.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// retry checks the override r against the retry policy of every event in
// activityv1.ActivityEvents with eventbus's own check, Retry.Check, and
// reports the first problem under the key of the field it names.
func (v *validator) retry(r Retry) {
	o := r.Override()
	if o.IsZero() {
		return
	}
	for _, ev := range activityv1.ActivityEvents {
		base := eventbus.DefaultRetry
		if ev.Policy != nil {
			base = ev.Policy.Retry
		}
		err := o.Apply(base).Check()
		if err == nil {
			continue
		}
		// Check's message starts with the field it is about.
		field, rest, _ := strings.Cut(err.Error(), " ")
		if _, ok := reflect.TypeOf(r).FieldByName(field); !ok {
			field, rest = "", err.Error()
		}
		key := strings.TrimSuffix("Messaging.Retry."+field, ".")
		if ev.Policy != nil {
			rest += fmt.Sprintf(" (applied to the contract policy of %s)", ev.Subject)
		}
		v.fail(key, rest)
		return
	}
}

// Package config reads the chat consumer's YAML configuration.
//
// Keys are spelled as in the go-zero service the consumer replaces (Name,
// Mode, ChatRpc, Messaging, ...). Every string value may reference the
// environment as ${VAR} or ${VAR:-default}; secrets such as ChatRpc.Token and
// Nats.Password should only ever be written that way. "$$" stands for a
// literal "$". Expansion happens after YAML parsing, on each value, so an
// expanded value can never change the document's structure.
//
// Load reports every problem at once, each naming the key, its line and, for
// a value from the environment, the variable: an unknown key (with the known
// keys of its section), a value of the wrong type, an unset environment
// variable or a value out of range, for example
// "Messaging.Retry.Multiplier (line 44): must be at least 1, got 0.5". The rules
// are those of package configfile, which the chat service shares.
package config

import (
	"net"
	"strconv"
	"time"

	"github.com/activitychat/chat/contracts/eventbus"
	"github.com/activitychat/chat/services/internal/configfile"
)

// Modes of the service.
const (
	// ModeDev logs text and may embed NATS and the chat service.
	ModeDev = "dev"
	// ModeProd logs JSON and connects to external NATS and chat services.
	ModeProd = "prod"
)

// Sync policies of the embedded NATS server's file store.
const (
	// SyncInterval flushes the store to disk every Embedded.Nats.SyncInterval.
	// A power failure can lose messages acknowledged within the last
	// interval; a crash of the process alone loses nothing.
	SyncInterval = "interval"
	// SyncAlways flushes the store to disk before every acknowledgement. No
	// acknowledged message is lost on power failure, at a cost in throughput.
	SyncAlways = "always"
)

// Config is the whole configuration of the chat consumer.
type Config struct {
	// Name names the process in logs. The default is "chat.consumer".
	Name string `yaml:"Name"`
	// Mode is ModeDev or ModeProd. The default is ModeDev.
	Mode string `yaml:"Mode"`
	// Log configures logging.
	Log Log `yaml:"Log"`
	// ChatRpc says how to reach the chat service.
	ChatRpc ChatRpc `yaml:"ChatRpc"`
	// Nats says how to reach NATS.
	Nats Nats `yaml:"Nats"`
	// Messaging configures consumption: retries, concurrency and metrics.
	Messaging Messaging `yaml:"Messaging"`
	// Notices holds the texts of the system notices the consumer sends.
	Notices Notices `yaml:"Notices"`
	// Embedded configures the NATS server and chat service that a dev-mode
	// process runs inside itself.
	Embedded Embedded `yaml:"Embedded"`

	src *configfile.Sources // where each value came from; nil for Default
}

// Log configures logging. Logs are text in dev mode and JSON in prod mode.
type Log struct {
	// Level is debug, info, warn or error. The default is info.
	Level string `yaml:"Level"`
}

// ChatRpc says how to reach the chat service over Connect.
type ChatRpc struct {
	// Endpoint is the chat service's base URL, for example
	// "https://chat.internal:8080". It is ignored when Embedded.Chat is
	// enabled.
	Endpoint string `yaml:"Endpoint"`
	// Token is the bearer token sent with every call; the embedded chat
	// service requires it too. Write it as ${VAR}.
	Token string `yaml:"Token" secret:"true"`
	// Timeout bounds each call. The default is 5s.
	Timeout time.Duration `yaml:"Timeout"`
}

// Nats says how to connect to NATS.
type Nats struct {
	// Url lists the servers, comma-separated, for example
	// "nats://nats-1:4222,nats://nats-2:4222". It is ignored when
	// Embedded.Nats is enabled.
	Url string `yaml:"Url"`
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string `yaml:"CredsFile"`
	// User is the user name to authenticate with, together with Password.
	User string `yaml:"User"`
	// Password is User's password. Write it as ${VAR}.
	Password string `yaml:"Password" secret:"true"`
	// TLS configures TLS to the servers.
	TLS TLS `yaml:"TLS"`
}

// TLS names the files of a TLS setup. All are optional: CaFile alone trusts
// a private CA, CertFile and KeyFile together add a client certificate.
type TLS struct {
	// CaFile is a PEM file of CA certificates to trust.
	CaFile string `yaml:"CaFile"`
	// CertFile is the PEM client certificate.
	CertFile string `yaml:"CertFile"`
	// KeyFile is the PEM key of CertFile.
	KeyFile string `yaml:"KeyFile"`
}

// Messaging configures how events are consumed.
type Messaging struct {
	// ServiceName names the durable consumers. Processes with the same
	// ServiceName share the work. The default is "chat.consumer".
	ServiceName string `yaml:"ServiceName"`
	// EnableMetrics serves Prometheus metrics on MetricsListenOn. The
	// default is true.
	EnableMetrics bool `yaml:"EnableMetrics"`
	// MetricsListenOn is the host:port of /metrics, /healthz and /readyz;
	// /healthz and /readyz are served even when EnableMetrics is false, and
	// nothing when MetricsListenOn is empty. The default is "127.0.0.1:9101".
	MetricsListenOn string `yaml:"MetricsListenOn"`
	// Concurrency is how many events of one subject are handled at once.
	// The default is 64.
	Concurrency int `yaml:"Concurrency"`
	// AckWait is how long NATS waits for an acknowledgement before it
	// redelivers; handlers are cut off a little before. The default is 30s.
	AckWait time.Duration `yaml:"AckWait"`
	// MaxAckPending bounds the events delivered but not yet acknowledged,
	// across all processes. The default is 1024.
	MaxAckPending int `yaml:"MaxAckPending"`
	// Replicas is the replica count of the streams the consumer creates:
	// 1 for a single server, 3 on a cluster. The default is 1.
	Replicas int `yaml:"Replicas"`
	// DrainTimeout bounds how long shutdown waits for in-flight events.
	// The default is 15s.
	DrainTimeout time.Duration `yaml:"DrainTimeout"`
	// Retry overrides the retry policy that the event contracts declare
	// (the policy of each event in proto/activity/v1/events.proto, the
	// seed's: 3 retries, from 100ms doubling to 10s, holding for 2m). Only
	// the keys the file sets apply; the others keep the contract's value.
	Retry Retry `yaml:"Retry"`
}

// Retry overrides fields of the contract's retry policy of failing events.
// A key left out (nil) keeps the value of the contract, so a change of the
// policy in the proto reaches every deployment that does not override it.
type Retry struct {
	// MaxRetries is how often a failing event is retried before it is
	// dead-lettered.
	MaxRetries *int `yaml:"MaxRetries"`
	// InitialInterval is the delay before the first retry.
	InitialInterval *time.Duration `yaml:"InitialInterval"`
	// MaxInterval caps the delay.
	MaxInterval *time.Duration `yaml:"MaxInterval"`
	// Multiplier grows the delay from one retry to the next.
	Multiplier *float64 `yaml:"Multiplier"`
	// MaxHold is how long a message whose handler says it came too early
	// (eventbus.NotReady) is parked and retried without spending retries.
	// The activity handlers no longer need it: the chat service keeps a
	// join or leave that comes before its group until the group exists.
	MaxHold *time.Duration `yaml:"MaxHold"`
}

// Override returns r as the eventbus override of the contract's policy.
func (r Retry) Override() eventbus.RetryOverride {
	return eventbus.RetryOverride{
		MaxRetries:      r.MaxRetries,
		InitialInterval: r.InitialInterval,
		MaxInterval:     r.MaxInterval,
		Multiplier:      r.Multiplier,
		MaxHold:         r.MaxHold,
	}
}

// Notices holds the texts of the system notices. In each text, {activity_id},
// {user_id}, {title} and {group_name} are replaced by the event's values;
// {title} is the group's name in join and leave notices.
type Notices struct {
	// Created is sent to the creator when the activity's group is created.
	Created string `yaml:"Created"`
	// Joined is sent to a user who joined the group.
	Joined string `yaml:"Joined"`
	// Left is sent to a user who left the group.
	Left string `yaml:"Left"`
}

// Embedded configures what a dev-mode process runs inside itself.
type Embedded struct {
	// DataDir is where embedded services keep their data unless told
	// otherwise; give two stacks on one machine different DataDirs (and
	// ports). The default is ".data/chatconsumer".
	DataDir string `yaml:"DataDir"`
	// Nats is the embedded NATS server.
	Nats EmbeddedNats `yaml:"Nats"`
	// Chat is the embedded chat service.
	Chat EmbeddedChat `yaml:"Chat"`
}

// EmbeddedNats configures the embedded NATS server.
type EmbeddedNats struct {
	// Enabled runs a NATS server with JetStream in the process; Nats.Url is
	// then ignored.
	Enabled bool `yaml:"Enabled"`
	// Listen is the client host:port. The default is "127.0.0.1:4222".
	Listen string `yaml:"Listen"`
	// HttpListen is the monitoring host:port (/healthz, /varz, /jsz); empty
	// turns monitoring off.
	HttpListen string `yaml:"HttpListen"`
	// StoreDir is the JetStream store. The default is DataDir/nats.
	StoreDir string `yaml:"StoreDir"`
	// Sync is SyncInterval or SyncAlways. The default is SyncInterval.
	Sync string `yaml:"Sync"`
	// SyncInterval is the flush interval under SyncInterval. The default is
	// 1s, against nats-server's own default of 2 minutes.
	SyncInterval time.Duration `yaml:"SyncInterval"`
}

// EmbeddedChat configures the embedded chat service.
type EmbeddedChat struct {
	// Enabled runs the chat service in the process; ChatRpc.Endpoint is
	// then ignored.
	Enabled bool `yaml:"Enabled"`
	// ListenOn is the host:port the chat service serves Connect on. The
	// default is "127.0.0.1:8080".
	ListenOn string `yaml:"ListenOn"`
	// Database is the chat service's database.
	Database Database `yaml:"Database"`
}

// Database names a chat database.
type Database struct {
	// Driver is "sqlite" or "postgres". The default is "sqlite".
	Driver string `yaml:"Driver"`
	// DSN is the SQLite file or the PostgreSQL URL. The default for SQLite
	// is DataDir/chat.db.
	DSN string `yaml:"DSN"`
}

// NatsURL returns the NATS URL the consumer connects to: the embedded
// server's when it is enabled, Nats.Url otherwise.
func (c *Config) NatsURL() string {
	if c.Embedded.Nats.Enabled {
		return "nats://" + dialable(c.Embedded.Nats.Listen)
	}
	return c.Nats.Url
}

// ChatEndpoint returns the chat service's base URL: the embedded service's
// when it is enabled, ChatRpc.Endpoint otherwise.
func (c *Config) ChatEndpoint() string {
	if c.Embedded.Chat.Enabled {
		return "http://" + dialable(c.Embedded.Chat.ListenOn)
	}
	return c.ChatRpc.Endpoint
}

// dialable turns a listen address into one a client on this host can dial:
// a wildcard host becomes the loopback address.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// ListenPort returns the port of a host:port listen address, where -1 and 0
// ask for a free port.
func ListenPort(listen string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	return host, port, err
}

package chatc

import (
	"encoding/json"
	"time"
)

// Duration is a time.Duration written as Go duration text ("1.5s"), the way
// the services' YAML configurations spell durations.
type Duration time.Duration

// MarshalJSON writes d as a string such as "100ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Configurations are written as JSON, which is YAML, so the test module
// needs no YAML library. Only the keys a test sets are written; the service
// supplies its defaults for the rest.

// ChatConfig is the chat service's configuration file; the keys are those
// of services/chat/chatserver.Config.
type ChatConfig struct {
	Name     string       `json:"Name,omitempty"`
	ListenOn string       `json:"ListenOn"`
	Mode     string       `json:"Mode,omitempty"`
	Database ChatDatabase `json:"Database"`
	Auth     ChatAuth     `json:"Auth"`
	Log      *LogConf     `json:"Log,omitempty"`
}

// ChatDatabase selects the chat service's store.
type ChatDatabase struct {
	// Driver is "sqlite" or "postgres".
	Driver string `json:"Driver,omitempty"`
	// DSN is the SQLite file or the PostgreSQL URL.
	DSN string `json:"DSN"`
}

// ChatAuth lists the accepted bearer tokens.
type ChatAuth struct {
	Tokens []string `json:"Tokens"`
}

// ConsumerConfig is the chat consumer's configuration file; the keys are
// those of services/chatconsumer/internal/config.
type ConsumerConfig struct {
	Name      string    `json:"Name,omitempty"`
	Mode      string    `json:"Mode,omitempty"`
	Log       *LogConf  `json:"Log,omitempty"`
	ChatRpc   ChatRpc   `json:"ChatRpc"`
	Nats      NatsConf  `json:"Nats"`
	Messaging Messaging `json:"Messaging"`
}

// LogConf configures logging.
type LogConf struct {
	Level string `json:"Level,omitempty"`
	// Encoding is the chat service's json or plain.
	Encoding string `json:"Encoding,omitempty"`
}

// ChatRpc says how the consumer reaches the chat service.
type ChatRpc struct {
	Endpoint string   `json:"Endpoint"`
	Token    string   `json:"Token,omitempty"`
	Timeout  Duration `json:"Timeout,omitempty"`
}

// NatsConf says how the consumer reaches NATS.
type NatsConf struct {
	// Url lists the servers, comma-separated.
	Url string `json:"Url"`
}

// Messaging configures consumption.
type Messaging struct {
	ServiceName     string   `json:"ServiceName,omitempty"`
	EnableMetrics   *bool    `json:"EnableMetrics,omitempty"`
	MetricsListenOn string   `json:"MetricsListenOn,omitempty"`
	Concurrency     int      `json:"Concurrency,omitempty"`
	AckWait         Duration `json:"AckWait,omitempty"`
	MaxAckPending   int      `json:"MaxAckPending,omitempty"`
	Replicas        int      `json:"Replicas,omitempty"`
	DrainTimeout    Duration `json:"DrainTimeout,omitempty"`
	Retry           *Retry   `json:"Retry,omitempty"`
}

// Retry is the retry policy of failing events.
type Retry struct {
	MaxRetries      int      `json:"MaxRetries,omitempty"`
	InitialInterval Duration `json:"InitialInterval,omitempty"`
	MaxInterval     Duration `json:"MaxInterval,omitempty"`
	Multiplier      float64  `json:"Multiplier,omitempty"`
	MaxHold         Duration `json:"MaxHold,omitempty"`
}

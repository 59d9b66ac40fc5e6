package config

import "time"

// Default notice texts, in Chinese like the seed's users expect.
const (
	// DefaultCreatedNotice is sent to the creator of an activity.
	DefaultCreatedNotice = "活动群聊「{title}」已创建，你是群主。"
	// DefaultJoinedNotice is sent to a user who joined an activity.
	DefaultJoinedNotice = "你已报名成功，已加入活动群聊「{title}」。"
	// DefaultLeftNotice is sent to a user who cancelled a sign-up.
	DefaultLeftNotice = "你已取消报名，已退出活动群聊「{title}」。"
)

// Default returns the configuration that an empty file means: dev mode,
// nothing embedded, the retry policy of the event contracts.
func Default() Config {
	return Config{
		Name: "chat.consumer",
		Mode: ModeDev,
		Log:  Log{Level: "info"},
		ChatRpc: ChatRpc{
			Timeout: 5 * time.Second,
		},
		Messaging: Messaging{
			ServiceName:     "chat.consumer",
			EnableMetrics:   true,
			MetricsListenOn: "127.0.0.1:9101",
			Concurrency:     64,
			AckWait:         30 * time.Second,
			MaxAckPending:   1024,
			Replicas:        1,
			DrainTimeout:    15 * time.Second,
		},
		Notices: Notices{
			Created: DefaultCreatedNotice,
			Joined:  DefaultJoinedNotice,
			Left:    DefaultLeftNotice,
		},
		Embedded: Embedded{
			DataDir: ".data/chatconsumer",
			Nats: EmbeddedNats{
				Listen:       "127.0.0.1:4222",
				Sync:         SyncInterval,
				SyncInterval: time.Second,
			},
			Chat: EmbeddedChat{
				ListenOn: "127.0.0.1:8080",
				Database: Database{Driver: "sqlite"},
			},
		},
	}
}

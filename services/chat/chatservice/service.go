// Package chatservice implements chat.v1.ChatService on a store.Store.
//
// Service is the Connect handler: it validates each request with the
// generated Validate method, calls the store and maps the store's errors to
// Connect codes. It knows nothing of HTTP, authentication or metrics, which
// package chatserver adds around it.
package chatservice

import (
	"log/slog"

	chatv1connect "github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/store"
)

// Service implements chatv1connect.ChatServiceHandler.
type Service struct {
	store  store.Store
	logger *slog.Logger
}

var _ chatv1connect.ChatServiceHandler = (*Service)(nil)

// New returns a Service that keeps its data in s and logs failures of the
// store to logger; a nil logger discards the logs.
func New(s store.Store, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: s, logger: logger}
}

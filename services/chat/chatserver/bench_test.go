package chatserver_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/chatserver"
)

// benchClients is the number of concurrent clients of the benchmarks.
const benchClients = 16

// BenchmarkAddGroupMember measures AddGroupMember over Connect (binary
// protobuf, HTTP/1.1 keep-alive, bearer token) on a real loopback TCP
// listener, with 16 concurrent clients each adding new users to one group.
// It reports calls/s and the 50th and 99th percentile latency.
//
//	go test -run '^$' -bench AddGroupMember -benchtime 20000x ./services/chat/chatserver/
func BenchmarkAddGroupMember(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			const token = "bench-token"
			cfg := testConfig(be.database(b), token)
			cfg.Log.Level = "error"
			srv, err := chatserver.New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, ln) }()
			b.Cleanup(func() { cancel(); <-served })

			transport := &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}
			b.Cleanup(transport.CloseIdleConnections)
			client := chatv1connect.NewChatServiceClient(&http.Client{Transport: transport}, "http://"+ln.Addr().String(),
				connect.WithInterceptors(bearer(token)))
			group, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_bench", OwnerId: "owner", Name: "Bench"}))
			if err != nil {
				b.Fatal(err)
			}
			groupID := group.Msg.GetGroup().GetGroupId()
			eventTime := timestamppb.New(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
			var seq atomic.Int64
			// Each run adds new users; a run never repeats an earlier one's.
			runID := time.Now().UnixNano()

			latencies := make([][]time.Duration, benchClients)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range benchClients {
				wg.Go(func() {
					for {
						n := seq.Add(1)
						if n > int64(b.N) {
							return
						}
						req := connect.NewRequest(&chatv1.AddGroupMemberRequest{
							GroupId:   groupID,
							UserId:    fmt.Sprintf("user_%d_%d", runID, n),
							EventTime: eventTime,
						})
						t := time.Now()
						res, err := client.AddGroupMember(ctx, req)
						latencies[w] = append(latencies[w], time.Since(t))
						if err != nil || !res.Msg.GetApplied() {
							b.Errorf("AddGroupMember = %v, %v", res, err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()

			all := slices.Concat(latencies...)
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[(len(all)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

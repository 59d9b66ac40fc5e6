package chatserver_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/activitychat/chat/services/chat/chatserver"
)

// FuzzParse feeds arbitrary YAML, rich in ${VAR} references, to Parse. It
// must not panic, must give the same answer twice, and a config it accepts
// must pass Validate. Run it with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 60s ./services/chat/chatserver/
//
// Seeds: the shipped configs, and configs whose values are the ids of the
// seed events of contracts/samples behind ${VAR} forms.
func FuzzParse(f *testing.F) {
	os.Setenv("CHAT_FUZZ_SET", "act_123456")
	os.Setenv("CHAT_FUZZ_DOLLAR", "${CHAT_FUZZ_SET}")
	os.Unsetenv("CHAT_FUZZ_UNSET")
	for _, name := range []string{"chat.yaml", "chat.docker.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "etc", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	seed, err := os.ReadFile(filepath.Join("..", "..", "..", "contracts", "samples", "activity.created", "seed.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []string{
		"${CHAT_FUZZ_SET}", "${CHAT_FUZZ_UNSET:-user_789}", "${CHAT_FUZZ_UNSET}", "${CHAT_FUZZ_DOLLAR}",
		"pre${CHAT_FUZZ_SET}post$", "${CHAT_FUZZ_UNSET:-${CHAT_FUZZ_SET}}", "$${CHAT_FUZZ_SET}", "${}", "${1A}",
	} {
		f.Add([]byte("ListenOn: 127.0.0.1:8080\nMode: dev\nDatabase: {DSN: '" + v + "'}\nAuth: {Tokens: ['" + v + "']}\n"))
	}
	f.Add(append([]byte("Name: "), seed...)) // JSON is YAML
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := chatserver.Parse(data)
		cfg2, err2 := chatserver.Parse(data)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(cfg, cfg2) {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}

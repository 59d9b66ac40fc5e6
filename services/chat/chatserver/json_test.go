package chatserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestConnectJSON is the curl walk of the README in Go: Connect's JSON over
// plain HTTP POSTs, as a new user would try it.
func TestConnectJSON(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		url := startServer(t, testConfig(b.database(t), "dev-secret")).URL
		post := func(procedure, token, body string) (int, map[string]any) {
			t.Helper()
			req, err := http.NewRequest(http.MethodPost, url+"/chat.v1.ChatService/"+procedure, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("%s: %d %s: %v", procedure, res.StatusCode, raw, err)
			}
			return res.StatusCode, out
		}
		const create = `{"activity_id":"act_123456","owner_id":"user_789","name":"Weekend hike"}`

		code, first := post("CreateGroup", "dev-secret", create)
		if code != http.StatusOK || first["created"] != true {
			t.Fatalf("CreateGroup = %d %v", code, first)
		}
		groupID := first["group"].(map[string]any)["groupId"].(string)
		code, second := post("CreateGroup", "dev-secret", create)
		if code != http.StatusOK || second["created"] != false || second["group"].(map[string]any)["groupId"] != groupID {
			t.Fatalf("second CreateGroup = %d %v; want the same group and an explicit created: false", code, second)
		}
		code, found := post("GetGroupByActivityId", "dev-secret", `{"activity_id":"act_123456"}`)
		if code != http.StatusOK || found["group"].(map[string]any)["groupId"] != groupID {
			t.Fatalf("GetGroupByActivityId = %d %v", code, found)
		}
		join := `{"group_id":"` + groupID + `","user_id":"user_456","event_time":"2024-01-01T11:00:00Z"}`
		if _, got := post("AddGroupMember", "dev-secret", join); got["applied"] != true || got["isMember"] != true {
			t.Errorf("AddGroupMember = %v", got)
		}
		if _, got := post("AddGroupMember", "dev-secret", join); got["applied"] != false || got["isMember"] != true {
			t.Errorf("repeated AddGroupMember = %v", got)
		}
		leave := `{"group_id":"` + groupID + `","user_id":"user_456","event_time":"2024-01-01T12:00:00Z"}`
		if _, got := post("RemoveGroupMember", "dev-secret", leave); got["applied"] != true || got["isMember"] != false {
			t.Errorf("RemoveGroupMember = %v", got)
		}
		_, members := post("ListGroupMembers", "dev-secret", `{"group_id":"`+groupID+`"}`)
		if list := members["members"].([]any); len(list) != 1 || list[0].(map[string]any)["role"] != "ROLE_OWNER" {
			t.Errorf("ListGroupMembers = %v, want the owner alone", members)
		}
		if code, got := post("CreateGroup", "dev-secret", `{"activity_id":"","owner_id":"user_789","name":"Weekend hike"}`); code != http.StatusBadRequest || got["code"] != "invalid_argument" {
			t.Errorf("empty activity_id = %d %v; want 400 invalid_argument", code, got)
		}
		if code, got := post("CreateGroup", "wrong", create); code != http.StatusUnauthorized || got["code"] != "unauthenticated" {
			t.Errorf("wrong token = %d %v; want 401 unauthenticated", code, got)
		}
	})
}

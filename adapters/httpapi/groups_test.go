package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/evchat/chatd/adapters/wire"
)

type groupAnswer struct {
	Conversation, Kind, Title, Owner, CreatedAt string
	Members                                     []string
}

func TestGroupRoutes(t *testing.T) {
	h := newHarness(t, options{})
	var g groupAnswer
	resp := h.do("POST", "/api/groups", "ann", `{"title":"team","members":["bob","bob","ann"]}`, &g)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(g.Conversation, "g_") || g.Kind != "group" ||
		g.Owner != "ann" || !slices.Equal(g.Members, []string{"ann", "bob"}) || g.CreatedAt == "" {
		t.Fatalf("create = %d %+v", resp.StatusCode, g)
	}
	path := "/api/groups/" + g.Conversation
	for _, bad := range []string{`{"title":"","members":["bob"]}`, `{"title":"t","members":[]}`, `{"title":"t","members":["no spaces"]}`,
		`{"title":"t"}`, `{"title":"` + strings.Repeat("é", 101) + `","members":["bob"]}`} {
		h.wantError("POST", "/api/groups", "ann", bad, http.StatusBadRequest, wire.CodeBadRequest)
	}
	h.wantError("GET", path, "eve", "", http.StatusNotFound, wire.CodeNotFound)
	h.wantError("GET", "/api/groups/g_nonsense", "ann", "", http.StatusNotFound, wire.CodeNotFound)
	h.wantError("POST", path+"/members", "bob", `{"add":["cid"]}`, http.StatusForbidden, wire.CodeForbidden)
	h.wantError("POST", path+"/members", "eve", `{"remove":["eve"]}`, http.StatusNotFound, wire.CodeNotFound)
	h.wantError("PATCH", path, "bob", `{"title":""}`, http.StatusBadRequest, wire.CodeBadRequest)

	if resp := h.do("PATCH", path, "bob", `{"title":"renamed"}`, &g); resp.StatusCode != http.StatusOK || g.Title != "renamed" {
		t.Fatalf("rename = %d %+v", resp.StatusCode, g)
	}
	if resp := h.do("POST", path+"/members", "ann", `{"add":["cid"],"remove":["ann"]}`, &g); resp.StatusCode != http.StatusOK ||
		g.Owner != "bob" || !slices.Equal(g.Members, []string{"bob", "cid"}) {
		t.Fatalf("the owner adds and leaves = %d %+v", resp.StatusCode, g)
	}
	var receipts []map[string]any
	if resp := h.do("GET", "/api/conversations/"+g.Conversation+"/receipts", "cid", "", &receipts); resp.StatusCode != http.StatusOK ||
		len(receipts) != 2 || receipts[0]["user"] != "bob" || receipts[1]["readUpTo"] != 0.0 {
		t.Fatalf("receipts = %d %v", resp.StatusCode, receipts)
	}
	h.wantError("GET", "/api/conversations/"+g.Conversation+"/receipts", "ann", "", http.StatusNotFound, wire.CodeNotFound)

	var list []map[string]any
	h.do("GET", "/api/conversations", "cid", "", &list)
	if len(list) != 1 || list[0]["kind"] != "group" || list[0]["title"] != "renamed" || list[0]["peer"] != nil ||
		len(list[0]["members"].([]any)) != 2 {
		t.Fatalf("cid's list = %v", list)
	}
	for _, u := range []string{"bob", "cid"} {
		g = groupAnswer{}
		h.do("POST", path+"/members", u, `{"remove":["`+u+`"]}`, &g)
	}
	if len(g.Members) != 0 || g.Owner != "" {
		t.Fatalf("after the last member left: %+v", g)
	}
	h.wantError("GET", path, "bob", "", http.StatusNotFound, wire.CodeNotFound)
}

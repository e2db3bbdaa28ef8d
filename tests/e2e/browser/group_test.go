package browser

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// chatInAGroup is the v1.3 part of TestChatInBrowser, on the same nodes
// and pages: alice makes a group with bob, sends, adds carol (who reads
// the whole history), edits and recalls her message, and removes carol.
// Bob's page is a phone's, so he goes back to his list to find the group.
func chatInAGroup(t *testing.T, alice, bob, carol *user) {
	t.Helper()
	alice.do("create a group with bob",
		chromedp.Click(chromedp.CSS(`details.new-group summary`)),
		chromedp.SendKeys(chromedp.ID("new-group-title"), "Weekend <trip>"),
		chromedp.SendKeys(chromedp.ID("new-group-members"), "bob"),
		chromedp.Click(chromedp.CSS(`#new-group button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("group-panel")),
	)
	if got := alice.eval(`document.getElementById('pane-peer').textContent`); got != "Weekend <trip>" {
		t.Errorf("alice's pane shows the group as %q", got)
	}
	alice.send("Who is in for Saturday?")
	alice.do("see it acked", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="1"]`)))

	bob.do("open the group from his list",
		chromedp.WaitVisible(chromedp.CSS(`button.conv[data-kind="group"]`)),
		chromedp.Click(chromedp.CSS(`button.conv[data-kind="group"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="1"] .author`)),
	)
	if got := bob.eval(`document.querySelector('li.msg[data-seq="1"] .author').textContent`); got != "alice" {
		t.Errorf("bob sees the author as %q", got)
	}

	// Alice adds carol, who finds the group with its whole history.
	alice.do("add carol",
		chromedp.Click(chromedp.CSS(`#group-panel summary`)),
		chromedp.SendKeys(chromedp.ID("group-add-input"), "carol"),
		chromedp.Click(chromedp.CSS(`#group-add button`)),
		chromedp.WaitVisible(chromedp.CSS(`#group-members li[data-member="carol"]`)),
	)
	carol.do("open the group she was added to",
		chromedp.WaitVisible(chromedp.CSS(`button.conv[data-kind="group"]`)),
		chromedp.Click(chromedp.CSS(`button.conv[data-kind="group"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="1"]`)),
	)
	bob.send("Count me in")
	carol.do("receive bob's message", chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="2"]`)))
	alice.do("receive bob's message", chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="2"]`)))
	// Both others have read it: the group status rule marks it read.
	alice.do("see her message read by both", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="1"][data-status="read"]`)))
	if got := carol.eval(`document.getElementById('group-count').textContent`); got != "3" {
		t.Errorf("carol's member list counts %s members, want 3", got)
	}

	// Alice edits her message, then recalls it: both show on every page.
	edited := "Who is in for Sunday?"
	alice.do("start editing her message",
		chromedp.Click(chromedp.CSS(`li.msg.own[data-seq="1"] button[data-action="edit"]`)),
		chromedp.WaitVisible(chromedp.ID("composer-cancel")),
		chromedp.SetValue(chromedp.ID("composer-input"), edited),
		chromedp.Click(chromedp.ID("composer-send")),
	)
	for _, u := range []*user{alice, bob, carol} {
		u.do("see the edit", chromedp.WaitVisible(chromedp.CSS(`li.msg[data-seq="1"] .edited`)))
		if got := u.eval(`document.querySelector('li.msg[data-seq="1"] .bubble').textContent`); got != edited {
			t.Errorf("%s sees the edited message as %q, want %q", u.name, got, edited)
		}
	}
	alice.do("recall her message", chromedp.Click(chromedp.CSS(`li.msg.own[data-seq="1"] button[data-action="recall"]`)))
	for _, u := range []*user{alice, bob, carol} {
		u.do("see the recall", chromedp.WaitVisible(chromedp.CSS(`li.msg.recalled[data-seq="1"]`)))
		if got := u.eval(`document.querySelector('li.msg[data-seq="1"] .bubble').textContent`); got != "message recalled" {
			t.Errorf("%s sees the recalled message as %q", u.name, got)
		}
	}
	alice.screenshot("group")

	// Alice removes carol: her page drops the group.
	alice.do("remove carol",
		chromedp.Click(chromedp.CSS(`#group-members li[data-member="carol"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#group-members li[data-member="carol"]`)),
	)
	carol.do("lose the group", chromedp.WaitNotPresent(chromedp.CSS(`button.conv[data-kind="group"]`)))
	bob.do("see carol gone", void(chromedp.Poll[bool](
		`document.getElementById('group-count').textContent === '2'`, chromedp.WithPollingTimeout(stepTimeout))))
}

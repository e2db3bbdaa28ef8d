package browser

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the chatd build the tests shared, once they are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		_ = os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

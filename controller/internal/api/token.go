package api

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rsgo/rsgo/shared/atomicfile"
)

// AdminTokenFile is the file in the data dir that holds a generated token.
const AdminTokenFile = "admin-token"

// LoadOrCreateAdminToken returns the operator token: given when set,
// otherwise the one stored in dataDir, otherwise a new random one that it
// stores with mode 0600. created tells the caller to show the new token once.
func LoadOrCreateAdminToken(dataDir, given string) (token string, created bool, err error) {
	if given != "" {
		if len(given) < 16 {
			return "", false, errors.New("admin token must be at least 16 characters")
		}
		return given, false, nil
	}
	path := filepath.Join(dataDir, AdminTokenFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		token = strings.TrimSpace(string(raw))
		if len(token) < 16 {
			return "", false, fmt.Errorf("%s holds no usable token; delete it to generate a new one", path)
		}
		return token, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	if err := atomicfile.Write(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("store admin token: %w", err)
	}
	return token, true, nil
}

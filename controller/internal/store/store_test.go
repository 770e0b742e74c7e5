package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestDataSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "db")
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	env := Environment{ID: "env-1", Name: "one", CreatedAt: now, CertSerial: "abc"}
	if err := s.CreateEnvironment(env, JoinToken{ID: "t1", EnvironmentID: "env-1", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.FindEnvironment("one")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != env.ID || got.CertSerial != env.CertSerial || !got.CreatedAt.Equal(now) {
		t.Errorf("after reopen got %+v, want %+v", got, env)
	}
}

func TestDeleteLeavesTombstoneAndFreesName(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	s.CreateEnvironment(Environment{ID: "env-1", Name: "one"}, JoinToken{ID: "t1", EnvironmentID: "env-1"})
	if err := s.DeleteEnvironment("env-1", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Environment("env-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted environment: err = %v, want ErrNotFound", err)
	}
	if d, err := s.Deleted("env-1"); err != nil || d.Name != "one" {
		t.Errorf("tombstone = %+v, %v", d, err)
	}
	if _, err := s.RedeemJoinToken("t1", func(*JoinToken, *Environment) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of deleted environment: err = %v, want ErrNotFound", err)
	}
	if err := s.CreateEnvironment(Environment{ID: "env-2", Name: "one"}, JoinToken{ID: "t2", EnvironmentID: "env-2"}); err != nil {
		t.Errorf("name not freed: %v", err)
	}
}

func TestPruneJoinTokens(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	s.CreateEnvironment(Environment{ID: "env-1", Name: "one"}, JoinToken{ID: "old", EnvironmentID: "env-1", ExpiresAt: now.Add(-48 * time.Hour)})
	if err := s.PutJoinToken(JoinToken{ID: "new", EnvironmentID: "env-1", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneJoinTokens(now.Add(-24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	noop := func(*JoinToken, *Environment) error { return nil }
	if _, err := s.RedeemJoinToken("old", noop); !errors.Is(err, ErrNotFound) {
		t.Errorf("old token survived: %v", err)
	}
	if _, err := s.RedeemJoinToken("new", noop); err != nil {
		t.Errorf("new token pruned: %v", err)
	}
}

func TestIsValidName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"a": true, "prod-eu-1": true, "": false, "A": false, "-a": false, "a-": false, "a.b": false} {
		if got := IsValidName(name); got != want {
			t.Errorf("IsValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

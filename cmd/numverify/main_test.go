package main

import (
	"testing"

	"github.com/numverify/numverify/internal/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster pgtest may start when no
// server answers.
func TestMain(m *testing.M) { pgtest.Main(m) }

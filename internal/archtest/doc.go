// Package archtest holds tests of the repository's shape rather than of its
// behaviour: docs/architecture.md names every package, and names no package
// or file that is gone.
package archtest

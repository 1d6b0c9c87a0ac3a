// Package archtest holds tests of the repository's shape rather than of its
// behaviour: docs/architecture.md names every package and no package or file
// that is gone, and comments cite only documents of this repository, by
// sections that exist; a production file over 600 lines says why it is one
// file.
package archtest

// Package pkgdoc holds the test that every package of the module, its
// commands, internal packages and test suites included, has a package doc
// comment: design lives in package docs, so a package without one is a
// hole in them.
package pkgdoc

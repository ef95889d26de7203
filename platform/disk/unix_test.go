//go:build unix

package disk

const isUnix = true

//go:build windows

package disk

const isUnix = false

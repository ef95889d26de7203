package controlplane

import (
	"crypto/sha256"
	"strconv"
	"testing"
	"time"
)

func TestTTLCacheExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var c ttlCache[string]
	c.init(30*time.Second, 1000, func() time.Time { return now })
	key := sha256.Sum256([]byte("secret"))
	if _, ok := c.get(key); ok {
		t.Fatal("get on an empty cache hit")
	}
	c.put(key, "tok")
	now = now.Add(30 * time.Second) // at the ttl: still fresh
	if v, ok := c.get(key); !ok || v != "tok" {
		t.Fatalf("get at the ttl = %q, %t; want tok, true", v, ok)
	}
	now = now.Add(time.Nanosecond)
	if _, ok := c.get(key); ok {
		t.Fatal("get past the ttl hit")
	}
	c.put(key, "tok2") // a re-read refreshes the entry
	if v, ok := c.get(key); !ok || v != "tok2" {
		t.Fatalf("get after a refresh = %q, %t; want tok2, true", v, ok)
	}
}

func TestTTLCacheNoExpiry(t *testing.T) {
	var c ttlCache[int]
	c.init(0, 1000, nil) // nil now: never read without expiry
	key := sha256.Sum256([]byte("client"))
	c.put(key, 7)
	if v, ok := c.get(key); !ok || v != 7 {
		t.Fatalf("get = %d, %t; want 7, true", v, ok)
	}
}

func TestTTLCacheBound(t *testing.T) {
	var c ttlCache[int]
	c.init(0, cacheShards*4, nil) // 4 entries a shard
	var keys [][32]byte
	for i := 0; len(keys) < 5; i++ {
		k := sha256.Sum256([]byte(strconv.Itoa(i)))
		if c.shard(k) == &c.shards[0] {
			keys = append(keys, k)
		}
	}
	for i, k := range keys {
		c.put(k, i)
	}
	// The fifth put found the shard full and started it over.
	if _, ok := c.get(keys[0]); ok {
		t.Error("a full shard kept its old entries")
	}
	if v, ok := c.get(keys[4]); !ok || v != 4 {
		t.Errorf("get of the last put = %d, %t; want 4, true", v, ok)
	}
	if n := len(c.shards[0].m); n != 1 {
		t.Errorf("shard holds %d entries after starting over, want 1", n)
	}
}

// TestTTLCacheHitAllocs keeps the heartbeat's authentication free of
// allocations on a hit, with and without expiry.
func TestTTLCacheHitAllocs(t *testing.T) {
	key := sha256.Sum256([]byte("secret"))
	var clients ttlCache[*int]
	clients.init(0, 1000, nil)
	v := 1
	clients.put(key, &v)
	var tokens ttlCache[*int]
	tokens.init(time.Minute, 1000, time.Now)
	tokens.put(key, &v)
	for name, c := range map[string]*ttlCache[*int]{"no expiry": &clients, "expiry": &tokens} {
		if n := testing.AllocsPerRun(100, func() {
			if _, ok := c.get(key); !ok {
				t.Fatal("miss")
			}
		}); n != 0 {
			t.Errorf("%s: a hit allocates %v times, want 0", name, n)
		}
	}
}

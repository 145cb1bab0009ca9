package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestMixingTable checks that the table is a permutation of 0..255, as
// RFC 3074 §6 requires ("256 distinct values").
func TestMixingTable(t *testing.T) {
	var seen [256]bool
	for i, v := range mixingTable {
		if seen[v] {
			t.Fatalf("value %d repeated at index %d", v, i)
		}
		seen[v] = true
	}
	// SHA-256 of the 256 bytes of ISC's loadb_mx_tbl (server/failover.c at
	// 572032cb), computed from ISC's source text.
	const want = "50015bcb049a75f57f1224b2d303a4d75485a0de3a772a30e06256daa1c873a7"
	if sum := sha256.Sum256(mixingTable[:]); hex.EncodeToString(sum[:]) != want {
		t.Errorf("mixingTable SHA-256 %x, want %s", sum, want)
	}
}

func TestLoadBalanceBucket(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	// Expected buckets computed by ISC's own loadb_p_hash and loadb_mx_tbl
	// (server/failover.c at 572032cb), compiled and run on these keys.
	// server/tests/load_bal_unittest.c has no hash vectors of its own; its
	// one-byte chaddr 14 is included.
	for _, tc := range []struct {
		name string
		key  []byte
		want uint8
	}{
		{"empty", nil, 0},
		{"byte 00", []byte{0x00}, 175},
		{"byte 01", []byte{0x01}, 251},
		{"byte 02", []byte{0x02}, 215},
		{"byte 03", []byte{0x03}, 119},
		{"byte 0e (ISC unit test chaddr)", []byte{0x0e}, 232},
		{"byte ff", []byte{0xff}, 234},
		{"ab", []byte("ab"), 26},
		{"ba", []byte("ba"), 91},
		{"cli-1", []byte("cli-1"), 122},
		{"cli-2", []byte("cli-2"), 183},
		{"cli-3", []byte("cli-3"), 74},
		{"cli-4", []byte("cli-4"), 40},
		{"cli-5", []byte("cli-5"), 209},
		{"cli-6", []byte("cli-6"), 194},
		{"MAC ba:51:11:a6:c2:b4", []byte{0xba, 0x51, 0x11, 0xa6, 0xc2, 0xb4}, 22},
		{"MAC 00:11:22:33:44:55", []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, 135},
		{"client-id 01:ba:51:11:a6:c2:b4", []byte{0x01, 0xba, 0x51, 0x11, 0xa6, 0xc2, 0xb4}, 112},
		{"16 zero bytes", make([]byte, 16), 77},
		{"0..255 (length 256 seeds 0)", seq(256), 152},
		{"0..255,0 (length 257 seeds 1)", append(seq(256), 0), 89},
	} {
		if got := LoadBalanceBucket(tc.key); got != tc.want {
			t.Errorf("%s: bucket %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestHBAFromSplit(t *testing.T) {
	ff := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
	zero := func(n int) []byte { return make([]byte, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		split int
		want  []byte
	}{
		{0, zero(32)},
		{-5, zero(32)},
		{1, cat([]byte{0x01}, zero(31))},
		{9, cat([]byte{0xff, 0x01}, zero(30))},
		{128, cat(ff(16), zero(16))},
		{255, cat(ff(31), []byte{0x7f})},
		{256, ff(32)},
		{1000, ff(32)},
	} {
		got := HBAFromSplit(tc.split)
		if !bytes.Equal(got[:], tc.want) {
			t.Errorf("split %d: %x, want %x", tc.split, got, tc.want)
		}
	}
}

func TestPrimaryServes(t *testing.T) {
	hba := HBAFromSplit(128)
	for b := 0; b < 256; b++ {
		if got, want := PrimaryServes(&hba, uint8(b)), b < 128; got != want {
			t.Errorf("split 128, bucket %d: PrimaryServes = %v", b, got)
		}
	}
	// Bucket b is bit b&7 of byte b>>3, least significant bit first (fw §8).
	var one [HBALen]byte
	one[5] = 0x04 // bucket 5*8+2 = 42
	for b := 0; b < 256; b++ {
		if got := PrimaryServes(&one, uint8(b)); got != (b == 42) {
			t.Errorf("HBA with only bucket 42: bucket %d served by primary = %v", b, got)
		}
	}
	// ISC's load_bal_unittest.c: with every bit set the primary serves the
	// one-byte chaddr {14} (and so the secondary does not).
	all := HBAFromSplit(256)
	if !PrimaryServes(&all, LoadBalanceBucket([]byte{14})) {
		t.Error("all-ones HBA: primary does not serve chaddr 14")
	}
}

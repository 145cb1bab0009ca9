package wire

// Load balancing by hash buckets (RFC 3074; draft §5.3, §12.11; fw §8).

// mixingTable is the 256-entry permutation of RFC 3074 §6, which ISC uses
// unchanged (server/failover.c loadb_mx_tbl).
var mixingTable = [256]uint8{
	251, 175, 119, 215, 81, 14, 79, 191, 103, 49,
	181, 143, 186, 157, 0, 232, 31, 32, 55, 60,
	152, 58, 17, 237, 174, 70, 160, 144, 220, 90,
	57, 223, 59, 3, 18, 140, 111, 166, 203, 196,
	134, 243, 124, 95, 222, 179, 197, 65, 180, 48,
	36, 15, 107, 46, 233, 130, 165, 30, 123, 161,
	209, 23, 97, 16, 40, 91, 219, 61, 100, 10,
	210, 109, 250, 127, 22, 138, 29, 108, 244, 67,
	207, 9, 178, 204, 74, 98, 126, 249, 167, 116,
	34, 77, 193, 200, 121, 5, 20, 113, 71, 35,
	128, 13, 182, 94, 25, 226, 227, 199, 75, 27,
	41, 245, 230, 224, 43, 225, 177, 26, 155, 150,
	212, 142, 218, 115, 241, 73, 88, 105, 39, 114,
	62, 255, 192, 201, 145, 214, 168, 158, 221, 148,
	154, 122, 12, 84, 82, 163, 44, 139, 228, 236,
	205, 242, 217, 11, 187, 146, 159, 64, 86, 239,
	195, 42, 106, 198, 118, 112, 184, 172, 87, 2,
	173, 117, 176, 229, 247, 253, 137, 185, 99, 164,
	102, 147, 45, 66, 231, 52, 141, 211, 194, 206,
	246, 238, 56, 110, 78, 248, 63, 240, 189, 93,
	92, 51, 53, 183, 19, 171, 72, 50, 33, 104,
	101, 69, 8, 252, 83, 120, 76, 135, 85, 54,
	202, 125, 188, 213, 96, 235, 136, 208, 162, 129,
	190, 132, 156, 38, 47, 1, 7, 254, 24, 4,
	216, 131, 89, 21, 28, 133, 37, 153, 149, 80,
	170, 68, 6, 169, 234, 151,
}

// LoadBalanceBucket returns the hash bucket (0..255) of a client key, by the
// Pearson hash of RFC 3074 §6 as ISC computes it (loadb_p_hash; fw §8,
// §15): the hash starts as the key length truncated to 8 bits and takes in
// the key from its last byte to its first.
//
// The key is the contents of the client's option 61 if it sent one, else
// chaddr[0:hlen] from the packet, without the htype byte. A lease's stored
// CHAddr (htype first) is hashed without its first byte (fw §8).
func LoadBalanceBucket(key []byte) uint8 {
	h := uint8(len(key))
	for i := len(key) - 1; i >= 0; i-- {
		h = mixingTable[h^key[i]]
	}
	return h
}

// PrimaryServes reports whether the primary serves bucket b under hba: in
// ISC a set bit means the primary, a clear bit the secondary, the opposite
// of draft §12.11 (fw §8, §14 item 2). Bucket b is bit 1<<(b&7) of byte
// b>>3.
func PrimaryServes(hba *[HBALen]byte, bucket uint8) bool {
	return hba[bucket>>3]&(1<<(bucket&7)) != 0
}

// HBAFromSplit returns the HBA of dhcpd.conf's "split n": buckets 0..n-1
// go to the primary (server/confpars.c; fw §8, §15). n is clamped to
// 0..256; split 128 gives 16 bytes of 0xff then 16 of 0x00.
func HBAFromSplit(n int) [HBALen]byte {
	var hba [HBALen]byte
	for i := 0; i < n && i < 256; i++ {
		hba[i>>3] |= 1 << (i & 7)
	}
	return hba
}

// Package quickxor computes OneDrive's quickXorHash: each byte XORed into a 160-bit circular
// register, 11 bits further along than the one before, and the length XORed into the last 64
// bits. It is what driveItem.file.hashes.quickXorHash holds (base64), for every drive.
package quickxor

import (
	"encoding/binary"
	"hash"
)

const (
	// Size is the hash's length in bytes.
	Size  = 20
	width = Size * 8
	shift = 11
)

type digest struct {
	reg    [Size]byte
	length uint64
	pos    int // bit position of the next byte
}

// New returns a quickXorHash.
func New() hash.Hash { return &digest{} }

func (d *digest) Write(p []byte) (int, error) {
	pos := d.pos
	for _, b := range p {
		i, off := pos/8, pos%8
		v := uint16(b) << off
		d.reg[i] ^= byte(v)
		d.reg[(i+1)%Size] ^= byte(v >> 8)
		if pos += shift; pos >= width {
			pos -= width
		}
	}
	d.pos = pos
	d.length += uint64(len(p))
	return len(p), nil
}

func (d *digest) Sum(b []byte) []byte {
	out := d.reg
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], d.length)
	for i := range n {
		out[Size-8+i] ^= n[i]
	}
	return append(b, out[:]...)
}

func (d *digest) Reset()         { *d = digest{} }
func (d *digest) Size() int      { return Size }
func (d *digest) BlockSize() int { return 64 }

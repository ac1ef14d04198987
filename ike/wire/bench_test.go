package wire

import "testing"

// Benchmarks on recorded strongSwan messages (case 1: X25519 + ML-KEM-768):
// the 248-octet IKE_SA_INIT request, and the IKE_AUTH request (282-octet
// datagram; its SK holds 12 inner payloads). IKE_AUTH parse covers the outer
// message and the decrypted inner chain, encode the inner chain and the
// outer message around the (already sealed) SK body.
//
//	go test -run '^$' -bench . -benchmem ./ike/wire

func benchVector(b *testing.B, index int) (*vecMessage, []byte) {
	f := loadVectors(b)[0]
	if f.Case != "case1_x25519_mlkem768" {
		b.Fatalf("first vector file is %s", f.Case)
	}
	vm := &f.Messages[index]
	return vm, vm.ikeBytes(b)
}

func BenchmarkParseIKESAInit(b *testing.B) {
	_, raw := benchVector(b, 0)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIKESAInit(b *testing.B) {
	_, raw := benchVector(b, 0)
	m, err := ParseMessage(raw)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseIKEAuth(b *testing.B) {
	vm, raw := benchVector(b, 5)
	plain := unhex(b, *vm.SKPlaintext)
	b.SetBytes(int64(len(raw) + len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseMessage(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParsePayloads(m.Encrypted().FirstPayload, plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIKEAuth(b *testing.B) {
	vm, raw := benchVector(b, 5)
	m, err := ParseMessage(raw)
	if err != nil {
		b.Fatal(err)
	}
	plain := unhex(b, *vm.SKPlaintext)
	inner, err := ParsePayloads(m.Encrypted().FirstPayload, plain)
	if err != nil {
		b.Fatal(err)
	}
	pbuf := make([]byte, 0, 2048)
	mbuf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(raw) + len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if pbuf, err = AppendPayloads(pbuf[:0], inner); err != nil {
			b.Fatal(err)
		}
		if mbuf, err = AppendMessage(mbuf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
}

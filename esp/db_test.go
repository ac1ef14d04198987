package esp

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func drainEvents(db *DB) []Event {
	var ev []Event
	for {
		e, ok := db.PollEvent()
		if !ok {
			return ev
		}
		ev = append(ev, e)
	}
}

func TestDBInstallLookupRemove(t *testing.T) {
	var db DB
	oc, ic := pairConfig(t, suites[0], 30)
	ic.IfID, oc.IfID = 7, 7
	in, err := db.AddInbound(testNow, ic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddInbound(testNow, ic); err == nil {
		t.Fatal("duplicate SPI accepted")
	}
	if db.Lookup(ic.SPI) != in || db.Lookup(ic.SPI+1) != nil {
		t.Fatal("Lookup")
	}
	out, err := db.AddOutbound(testNow, oc)
	if err != nil {
		t.Fatal(err)
	}
	// Through the DB: outbound set of interface 7, inbound by SPI.
	inner := ipPacket(a1, a2, ProtoTCP, 5, 6, 90)
	pkt, sa, err := db.Outbound(7).SealTunnel(nil, inner)
	if err != nil || sa != out {
		t.Fatalf("SealTunnel: %v", err)
	}
	got, gotSA, err := db.Open(make([]byte, 0, 200), pkt)
	if err != nil || gotSA != in || string(got) != string(inner) {
		t.Fatalf("Open: %v", err)
	}
	// No SA on another interface, none for foreign traffic.
	if _, _, err := db.Outbound(8).SealTunnel(nil, inner); !errors.Is(err, DropNoSA) {
		t.Fatalf("other interface: %v", err)
	}
	if _, _, err := db.Outbound(7).SealTunnel(nil, ipPacket(a2, a1, ProtoTCP, 5, 6, 90)); !errors.Is(err, DropNoSA) {
		t.Fatalf("reverse traffic: %v", err)
	}
	if db.Counters().Dropped(DropNoSA) != 2 {
		t.Fatalf("DB counters %+v", db.Counters())
	}

	// Rekey: a new outbound SA takes over at once; the old inbound SA keeps
	// working until it is removed.
	oc2, ic2 := pairConfig(t, suites[0], 31)
	oc2.IfID, ic2.IfID = 7, 7
	out2, _ := db.AddOutbound(testNow, oc2)
	in2, _ := db.AddInbound(testNow, ic2)
	if _, sa, _ := db.Outbound(7).SealTunnel(nil, inner); sa != out2 {
		t.Fatal("new SA not preferred")
	}
	late, _ := out.SealTunnel(nil, inner)
	if _, sa, err := db.Open(nil, late); err != nil || sa != in {
		t.Fatalf("old SA during rekey: %v", err)
	}
	if !db.RemoveOutbound(out) || db.RemoveOutbound(out) || !db.RemoveInbound(ic.SPI) || db.RemoveInbound(ic.SPI) {
		t.Fatal("Remove")
	}
	late, _ = out.SealTunnel(nil, inner)
	if _, _, err := db.Open(nil, late); !errors.Is(err, DropBadSPI) {
		t.Fatalf("removed SA: %v", err)
	}
	if sas := db.Outbound(7).SAs(); len(sas) != 1 || sas[0] != out2 {
		t.Fatal("outbound set after removal")
	}
	_ = in2
}

func TestLifetimes(t *testing.T) {
	var db DB
	notified := 0
	db.SetNotify(func() { notified++ })
	oc, ic := pairConfig(t, suites[2], 40)
	oc.Lifetime = Lifetime{SoftPackets: 3, HardPackets: 5}
	ic.Lifetime = Lifetime{SoftBytes: 250, HardBytes: 400, SoftTime: time.Minute, HardTime: 2 * time.Minute}
	out, _ := db.AddOutbound(testNow, oc)
	in, _ := db.AddInbound(testNow, ic)
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 100)
	var log []string
	for i := 1; i <= 6; i++ {
		pkt, err := out.SealTunnel(nil, inner)
		if err != nil {
			log = append(log, fmt.Sprintf("seal %d: %v", i, err))
			continue
		}
		if _, err := in.OpenTunnel(nil, pkt); err != nil {
			log = append(log, fmt.Sprintf("open %d: %v", i, err))
		}
		for _, e := range drainEvents(&db) {
			log = append(log, fmt.Sprintf("after %d: %v", i, e))
		}
	}
	want := []string{
		"after 3: soft packets limit, out SPI c0de0029", // third packet
		"after 3: soft bytes limit, in SPI c0de0029",    // 300 >= 250
		"after 4: hard bytes limit, in SPI c0de0029",    // 400 >= 400
		"open 5: esp: drop: SA expired",
		"after 5: hard packets limit, out SPI c0de0029",
		"seal 6: esp: drop: SA expired",
	}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Fatalf("got\n%v\nwant\n%v", log, want)
	}
	if notified != 4 {
		t.Fatalf("notify called %d times", notified)
	}
	if in.Counters().Dropped(DropExpired) != 1 || out.Counters().Dropped(DropExpired) != 1 {
		t.Fatal("expiry drops not counted")
	}

	// Time: soft at 1 min, hard at 2 min for the inbound SA only; a removed
	// SA's timers never fire.
	var db2 DB
	_, ic2 := pairConfig(t, suites[0], 41)
	ic2.Lifetime = Lifetime{SoftTime: time.Minute, HardTime: 2 * time.Minute}
	in2, _ := db2.AddInbound(testNow, ic2)
	_, ic3 := pairConfig(t, suites[0], 42)
	ic3.Lifetime = Lifetime{SoftTime: 30 * time.Second}
	db2.AddInbound(testNow, ic3)
	db2.RemoveInbound(ic3.SPI)
	if at, ok := db2.NextTimeout(); !ok || !at.Equal(testNow.Add(time.Minute)) {
		t.Fatalf("NextTimeout %v %v", at, ok)
	}
	db2.HandleTimeout(testNow.Add(59 * time.Second))
	if ev := drainEvents(&db2); len(ev) != 0 {
		t.Fatalf("early events %v", ev)
	}
	db2.HandleTimeout(testNow.Add(time.Minute))
	if ev := drainEvents(&db2); len(ev) != 1 || ev[0].Kind != EventSoft || ev[0].Limit != LimitTime {
		t.Fatalf("soft time %v", ev)
	}
	if in2.Expired() {
		t.Fatal("expired at soft limit")
	}
	db2.HandleTimeout(testNow.Add(time.Hour))
	if ev := drainEvents(&db2); len(ev) != 1 || ev[0].Kind != EventHard {
		t.Fatalf("hard time %v", ev)
	}
	if !in2.Expired() {
		t.Fatal("not expired after hard limit")
	}
	if _, ok := db2.NextTimeout(); ok {
		t.Fatal("timers left")
	}
}

func TestTimerSweep(t *testing.T) {
	var db DB
	for i := range 5000 {
		_, ic := pairConfig(t, suites[0], uint64(i))
		ic.Lifetime = Lifetime{SoftTime: time.Hour, HardTime: 2 * time.Hour}
		if _, err := db.AddInbound(testNow, ic); err != nil {
			t.Fatal(err)
		}
		if i%10 != 0 {
			db.RemoveInbound(ic.SPI)
		}
	}
	db.tmMu.Lock()
	n := len(db.timers)
	db.tmMu.Unlock()
	if n > 2500 {
		t.Fatalf("%d timers kept for 500 live SAs", n)
	}
	db.HandleTimeout(testNow.Add(3 * time.Hour))
	if ev := drainEvents(&db); len(ev) != 1000 {
		t.Fatalf("%d events for 500 live SAs", len(ev))
	}
}

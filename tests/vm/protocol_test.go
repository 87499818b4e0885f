package vm

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSerial(t *testing.T) {
	line := func(r Result) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return Marker + string(b)
	}
	step := Result{Kind: KindStep, Name: "a", Exit: 3, Stdout: "x\ny\n", Millis: 5}
	out := "[    0.1] Linux version 6.1\r\n" + line(Result{Kind: KindSetup, Info: map[string]string{"kernel": "6.1"}}) + "\r\n" +
		"noise " + line(step) + "\n" + line(Result{Kind: KindDone}) + "\n"
	got, err := ParseSerial([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{{Kind: KindSetup, Info: map[string]string{"kernel": "6.1"}}, step, {Kind: KindDone}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseSerial mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{Marker + "{", Marker + `{"exit":1}`} {
		if _, err := ParseSerial([]byte("ok\n" + bad + "\n")); err == nil {
			t.Errorf("ParseSerial(%q): no error", bad)
		}
	}
}

func FuzzParseSerial(f *testing.F) {
	f.Add([]byte(Marker + `{"kind":"step","name":"a","exit":1,"stdout":"x"}` + "\r\n"))
	f.Add([]byte("junk\n" + Marker + `{"kind":"done"}`))
	f.Add([]byte(Marker + "{\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		rs, err := ParseSerial(b)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Kind == "" {
				t.Fatalf("result without kind from %q", b)
			}
		}
	})
}

func ExampleParseSerial() {
	rs, _ := ParseSerial([]byte("boot\n" + Marker + `{"kind":"step","name":"hello","exit":0,"stdout":"hi\n"}` + "\r\n"))
	fmt.Printf("%s %s exit %d: %q\n", rs[0].Kind, rs[0].Name, rs[0].Exit, rs[0].Stdout)
	// Output: step hello exit 0: "hi\n"
}

package stage0

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/stage1"
)

// TestDNSFlags checks rkt 1.30's parseDNSFlags rules (rkt/run.go).
func TestDNSFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      DNSFlags
		want    stage1.Options
		wantErr string
	}{
		{name: "none given"},
		{name: "servers and more", in: DNSFlags{DNS: []string{"8.8.8.8", "4.2.2.2,2001:db8::1"}, Search: []string{"a"}, Options: []string{"debug"}, Domain: "d"},
			want: stage1.Options{DNS: []string{"8.8.8.8", "4.2.2.2", "2001:db8::1"}, DNSSearch: []string{"a"}, DNSOptions: []string{"debug"}, DNSDomain: "d"}},
		{name: "host", in: DNSFlags{DNS: []string{"host"}}, want: stage1.Options{DNS: []string{"host"}}},
		{name: "none", in: DNSFlags{DNS: []string{"none"}}, want: stage1.Options{DNS: []string{"none"}}},
		{name: "host with a server", in: DNSFlags{DNS: []string{"host", "8.8.8.8"}}, wantErr: "no other --dns options allowed when --dns=host is passed"},
		{name: "none with search", in: DNSFlags{DNS: []string{"none"}, Search: []string{"a"}}, wantErr: "cannot call --dns-opt, --dns-search, or --dns-domain with --dns=none"},
		{name: "bad server", in: DNSFlags{DNS: []string{"dns.example"}}, wantErr: `invalid IP passed to --dns: "dns.example"`},
		{name: "hosts grouped by IP", in: DNSFlags{HostsEntries: []string{"198.51.100.0=host1,198.51.100.1=host2", "198.51.100.0=host3"}},
			want: stage1.Options{HostsEntries: []string{"198.51.100.0 host1 host3", "198.51.100.1 host2"}}},
		{name: "hosts host", in: DNSFlags{HostsEntries: []string{"host"}}, want: stage1.Options{HostsEntries: []string{"host"}}},
		{name: "hosts host with pairs", in: DNSFlags{HostsEntries: []string{"host", "10.0.0.1=a"}}, wantErr: "cannot pass --hosts-entry=host with other --hosts-entry values"},
		{name: "hosts without =", in: DNSFlags{HostsEntries: []string{"10.0.0.1"}}, wantErr: `did not understand --hosts-entry "10.0.0.1"`},
		{name: "hosts bad IP", in: DNSFlags{HostsEntries: []string{"10.0.0=a"}}, wantErr: `invalid IP passed to --hosts-entry: "10.0.0"`},
		{name: "hosts name with newline", in: DNSFlags{HostsEntries: []string{"10.0.0.1=a\n10.6.6.6 evil"}}, wantErr: "invalid host name passed to --hosts-entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got stage1.Options
			err := tc.in.apply(&got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("apply(%+v) = %v, want an error containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("apply(%+v): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("apply(%+v) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

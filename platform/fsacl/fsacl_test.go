package fsacl

import "testing"

func TestSDDL(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"dir", DirSDDL(), "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"},
		{"file", FileSDDL(), "D:PAI(A;;FA;;;SY)(A;;FA;;;BA)"},
		{"dir with the process user", DirSDDL("S-1-5-21-1-2-3-1001"),
			"D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;S-1-5-21-1-2-3-1001)"},
		{"file with the process user", FileSDDL("S-1-5-21-1-2-3-1001"),
			"D:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;S-1-5-21-1-2-3-1001)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	// Building with extra trustees must not change the defaults.
	_ = DirSDDL("S-1-5-21-9")
	if len(Trustees) != 2 || DirSDDL() != "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)" {
		t.Errorf("extra trustees leaked into the defaults: %q", Trustees)
	}
}

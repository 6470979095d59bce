package ringtun

import (
	"reflect"
	"testing"

	"github.com/ringtun/ringtun/internal/driver"
)

// TestStatsFrom: every driver counter reaches the public Stats, under the
// same name, and Stats has no field the driver does not fill.
func TestStatsFrom(t *testing.T) {
	var d driver.Stats
	dv := reflect.ValueOf(&d).Elem()
	for i := range dv.NumField() {
		dv.Field(i).SetUint(uint64(1000 + i))
	}
	s := statsFrom(d)
	sv := reflect.ValueOf(s)
	if sv.NumField() != dv.NumField() {
		t.Fatalf("Stats has %d fields, driver.Stats %d", sv.NumField(), dv.NumField())
	}
	for i := range dv.NumField() {
		name := dv.Type().Field(i).Name
		f := sv.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("Stats has no %s", name)
			continue
		}
		if f.Uint() != dv.Field(i).Uint() {
			t.Errorf("Stats.%s = %d, want %d", name, f.Uint(), dv.Field(i).Uint())
		}
	}
}

package awsmeter

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestItemSize(t *testing.T) {
	t.Parallel()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	cases := []struct {
		name string
		item item
		want int
	}{
		{"empty", item{}, 0},
		{"string: name and UTF-8 bytes", item{"pk": s("abc")}, 2 + 3},
		{"multi-byte string", item{"k": s("é")}, 1 + 2},
		{"binary", item{"d": &types.AttributeValueMemberB{Value: make([]byte, 100)}}, 1 + 100},
		{"number: two digits a byte, plus one", item{"x": n("1234567")}, 1 + 4 + 1},
		{"number: trailing and leading zeros do not count", item{"x": n("001700000000")}, 1 + 1 + 1},
		{"number: sign and point do not count", item{"x": n("-12.5")}, 1 + 2 + 1},
		{"number: zero", item{"x": n("0")}, 1 + 1 + 1},
		{"bool and null", item{"b": &types.AttributeValueMemberBOOL{Value: true}, "z": &types.AttributeValueMemberNULL{Value: true}}, 2 + 2},
		{"list: 3 bytes plus 1 per element", item{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("ab"), s("c")}}}, 1 + 3 + (1 + 2) + (1 + 1)},
		{"map: element names count", item{"m": &types.AttributeValueMemberM{Value: item{"ab": s("xyz")}}}, 1 + 3 + 1 + 2 + 3},
		{"string set", item{"ss": &types.AttributeValueMemberSS{Value: []string{"a", "bcd"}}}, 2 + 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ItemSize(c.item); got != c.want {
				t.Errorf("ItemSize = %d, want %d", got, c.want)
			}
		})
	}
}

func TestUnitRounding(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		size int
		want float64
	}{{0, 1}, {1, 1}, {1024, 1}, {1025, 2}, {3000, 3}} {
		if got := writeUnits(c.size); got != c.want {
			t.Errorf("writeUnits(%d) = %v, want %v", c.size, got, c.want)
		}
	}
	for _, c := range []struct {
		size       int
		consistent bool
		want       float64
	}{{0, true, 1}, {0, false, 0.5}, {4096, true, 1}, {4097, true, 2}, {4097, false, 1}, {12 << 10, false, 1.5}} {
		if got := readUnits(c.size, c.consistent); got != c.want {
			t.Errorf("readUnits(%d, %v) = %v, want %v", c.size, c.consistent, got, c.want)
		}
	}
	if got := chunks(64 << 10); got != 1 {
		t.Errorf("chunks(64 KiB) = %v, want 1", got)
	}
	if got := chunks(64<<10 + 1); got != 2 {
		t.Errorf("chunks(64 KiB + 1) = %v, want 2", got)
	}
	if got := numberSize(strings.Repeat("9", 38)); got != 20 {
		t.Errorf("numberSize(38 digits) = %d, want 20", got)
	}
}

package awsmeter

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ItemSize is the size DynamoDB bills for an item: for every attribute, the UTF-8 length of
// its name plus the size of its value (Developer Guide, "Item sizes and formats"):
//
//   - String: UTF-8 bytes; Binary: raw bytes;
//   - Number: 1 byte per two significant digits, plus 1 byte;
//   - Boolean and Null: 1 byte;
//   - List and Map: 3 bytes, plus 1 byte and the size of each element (a map element's
//     name counts like an attribute name);
//   - sets: the sum of their elements' sizes.
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

// numberSize is DynamoDB's size of a number: leading and trailing zeros (and the sign,
// decimal point and exponent) do not count; every two significant digits take a byte, and
// one byte more.
func numberSize(s string) int {
	s = strings.TrimPrefix(s, "-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	digits := strings.Trim(strings.ReplaceAll(s, ".", ""), "0")
	if digits == "" {
		digits = "0" // zero still takes a digit
	}
	return (len(digits)+1)/2 + 1
}

// Capacity rounding: a write unit covers 1 KB, a read unit 4 KB (strongly consistent;
// eventually consistent reads cost half).
const (
	writeUnitBytes = 1024
	readUnitBytes  = 4096
)

// writeUnits is the write units for an item of size bytes: started kilobytes, at least 1.
func writeUnits(size int) float64 {
	if size <= 0 {
		return 1
	}
	return float64((size + writeUnitBytes - 1) / writeUnitBytes)
}

// readUnits is the read units for reading size bytes in one request: started 4 KB blocks,
// at least 1, halved when eventually consistent.
func readUnits(size int, consistent bool) float64 {
	u := 1.0
	if size > 0 {
		u = float64((size + readUnitBytes - 1) / readUnitBytes)
	}
	if !consistent {
		u /= 2
	}
	return u
}

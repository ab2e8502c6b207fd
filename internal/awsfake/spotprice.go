package awsfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// What the fake knows of spot price history, served as EC2's
// DescribeSpotPriceHistory. Source: EC2 API Reference,
// DescribeSpotPriceHistory (request parameters InstanceType.N,
// ProductDescription.N, AvailabilityZone, StartTime, EndTime, MaxResults
// 1–1000, NextToken, Filter.N; "When you specify a start and end time, the
// operation returns the prices of the instance types within that time
// range. It also returns the last price change before the start time,
// which is the effective price as of the start time."), and the SpotPrice
// data type (availabilityZone, instanceType, productDescription,
// spotPrice, timestamp in spotPriceHistorySet).

// spotChange is one change of a type's spot price in a zone.
type spotChange struct {
	typ, zone, product string
	at                 time.Time
	usd                float64
}

// spotProductLinux is the product description of the Linux instances
// gpipe's template launches in a VPC.
const spotProductLinux = "Linux/UNIX"

// SpotPriceChange records that an instance type's spot price in a zone
// became usdPerHour at a moment (for Linux/UNIX): DescribeSpotPriceHistory
// lists it. It does not change what launches (SpotPrice does).
func (e *EC2) SpotPriceChange(instanceType, zone string, at time.Time, usdPerHour float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spotHistory = append(e.spotHistory, spotChange{instanceType, zone, spotProductLinux, at.UTC(), usdPerHour})
}

// spotPriceFilters are the filters EC2 documents for DescribeSpotPriceHistory.
var spotPriceFilters = []string{"availability-zone", "instance-type", "product-description", "spot-price", "timestamp"}

// describeSpotPriceHistory answers with the changes that match, the most
// recent first, as EC2 lists them; e.mu is held.
func (e *EC2) describeSpotPriceHistory(w http.ResponseWriter, rid string, form url.Values) (any, bool) {
	type item struct {
		InstanceType       string `xml:"instanceType"`
		ProductDescription string `xml:"productDescription"`
		SpotPrice          string `xml:"spotPrice"`
		Timestamp          string `xml:"timestamp"`
		AvailabilityZone   string `xml:"availabilityZone"`
	}
	bad := func(msg string) (any, bool) {
		ec2Error(w, rid, http.StatusBadRequest, "InvalidParameterValue", msg)
		return nil, false
	}
	if form.Get("AvailabilityZoneId") != "" {
		e.s.violation("DescribeSpotPriceHistory AvailabilityZoneId is not modelled")
		return bad("AvailabilityZoneId is not modelled by the fake")
	}
	f, msg := e.filters(form, spotPriceFilters, []string{"availability-zone", "instance-type", "product-description"})
	if msg != "" {
		return bad(msg)
	}
	parse := func(key string) (time.Time, bool, string) {
		v := form.Get(key)
		if v == "" {
			return time.Time{}, false, ""
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, false, fmt.Sprintf("Invalid value '%s' for %s", v, key)
		}
		return t, true, ""
	}
	start, hasStart, msg := parse("StartTime")
	if msg != "" {
		return bad(msg)
	}
	end, hasEnd, msg := parse("EndTime")
	if msg != "" {
		return bad(msg)
	}
	if !hasEnd {
		end = e.s.now()
	}
	if hasStart && start.After(end) {
		return bad("StartTime must be before EndTime")
	}
	max := 1000
	if v := form.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return bad(fmt.Sprintf("Value (%s) for parameter maxResults is invalid. Expecting a value between 1 and 1000.", v))
		}
		max = n
	}
	types, products, zone := indexed(form, "InstanceType"), indexed(form, "ProductDescription"), form.Get("AvailabilityZone")
	match := func(c spotChange) bool {
		return (len(types) == 0 || contains(types, c.typ)) && (len(products) == 0 || contains(products, c.product)) &&
			(zone == "" || c.zone == zone) && matchAll(f["availability-zone"], c.zone) &&
			matchAll(f["instance-type"], c.typ) && matchAll(f["product-description"], c.product)
	}
	// In range, plus per zone, type and product the last change before the
	// start: the price in effect then.
	var in []spotChange
	before := map[[3]string]spotChange{}
	for _, c := range e.spotHistory {
		switch {
		case !match(c) || c.at.After(end):
		case hasStart && c.at.Before(start):
			k := [3]string{c.typ, c.zone, c.product}
			if b, ok := before[k]; !ok || c.at.After(b.at) {
				before[k] = c
			}
		default:
			in = append(in, c)
		}
	}
	for _, c := range before {
		in = append(in, c)
	}
	sort.SliceStable(in, func(i, k int) bool { return in[i].at.After(in[k].at) })
	from := 0
	if tok := form.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(in) {
			return bad("The token '" + tok + "' is invalid")
		}
		from = n
	}
	to, next := min(from+max, len(in)), ""
	if to < len(in) {
		next = strconv.Itoa(to)
	}
	items := []item{}
	for _, c := range in[from:to] {
		items = append(items, item{c.typ, c.product, strconv.FormatFloat(c.usd, 'f', 6, 64),
			c.at.Format("2006-01-02T15:04:05.000Z"), c.zone})
	}
	return struct {
		XMLName   xml.Name `xml:"DescribeSpotPriceHistoryResponse"`
		NS        string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Items     []item   `xml:"spotPriceHistorySet>item"`
		NextToken string   `xml:"nextToken"`
	}{NS: ec2NS, RequestID: rid, Items: items, NextToken: next}, true
}

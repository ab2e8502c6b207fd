package awsfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

const (
	ec2Version = "2016-11-15"
	ec2NS      = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// EC2 serves the two EC2 reads provision-stack makes (EC2's own query
// protocol: ImageId.1, Filter.1.Value.1, lowercase XML without a Result
// wrapper).
type EC2 struct {
	s          *Server
	mu         sync.Mutex
	images     []Image
	subnets    map[string]string    // subnet id → vpc id
	offers     map[string][]string  // instance type → zones offering it
	noCapacity map[string]bool      // zones out of capacity
	noSpot     map[[2]string]bool   // instance type, zone: no spot capacity
	spotPrice  map[string]float64   // instance type → current spot price
	quota      map[[2]string]int    // market, instance type → instances allowed at once
	instances  map[string]*instance // by id (interrupt.go)
	spotRole   bool                 // the account's spot service-linked role exists (spotrole.go)
	// spotHistory is what DescribeSpotPriceHistory lists (spotprice.go).
	spotHistory []spotChange
}

// Offer sets the zones that offer an instance type (DescribeInstanceTypeOfferings;
// an instance launched elsewhere fails as "Unsupported"). By default
// dl1.24xlarge is offered in us-east-1a and us-east-1b.
func (e *EC2) Offer(instanceType string, zones ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offers[instanceType] = append([]string(nil), zones...)
}

// NoCapacity makes instance launches in the zones fail with
// InsufficientInstanceCapacity until further notice.
func (e *EC2) NoCapacity(zones ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, z := range zones {
		e.noCapacity[z] = true
	}
}

// NoSpotCapacity makes spot launches of an instance type in the zones fail
// (on-demand ones still launch) until further notice.
func (e *EC2) NoSpotCapacity(instanceType string, zones ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.noSpot == nil {
		e.noSpot = map[[2]string]bool{}
	}
	for _, z := range zones {
		e.noSpot[[2]string{instanceType, z}] = true
	}
}

// SpotPrice sets the current spot price of an instance type (every zone); a
// spot launch whose maximum price is below it fails with SpotMaxPriceTooLow.
// Unset, no maximum price is too low.
func (e *EC2) SpotPrice(instanceType string, usdPerHour float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.spotPrice == nil {
		e.spotPrice = map[string]float64{}
	}
	e.spotPrice[instanceType] = usdPerHour
}

// Quota allows at most n instances of a type in a market ("on-demand",
// "spot") at once; the launch of one more fails as EC2's vCPU quotas make it
// fail. (EC2 counts vCPUs per instance family, "Running On-Demand DL
// instances"; with one type of the family that is n times its vCPUs.)
func (e *EC2) Quota(market, instanceType string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.quota == nil {
		e.quota = map[[2]string]int{}
	}
	e.quota[[2]string{market, instanceType}] = n
}

// launch is what CloudFormation asks EC2 to launch: an instance type in a
// zone, in a market (with spot's maximum price), while live instances of the
// same type and market exist.
type launch struct {
	typ, zone, market, maxPrice string
	live                        int
}

// launchFailure is what RunInstances answers for a launch: "" when it
// launches. The codes and wording are EC2's, as CloudFormation puts them in
// the instance's CREATE_FAILED event; sources: EC2 API Reference "Error
// codes for the Amazon EC2 API" (Unsupported, InsufficientInstanceCapacity,
// VcpuLimitExceeded, MaxSpotInstanceCountExceeded, SpotMaxPriceTooLow) and
// EC2 User Guide "Spot Instance request status" (no spot capacity:
// capacity-not-available, which RunInstances reports as
// InsufficientInstanceCapacity "There is no Spot capacity available that
// matches your request.").
func (e *EC2) launchFailure(l launch, n int) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	typ, zone := l.typ, l.zone
	offered := e.offers[typ]
	var others []string
	for _, z := range offered {
		if z != zone && !e.noCapacity[z] {
			others = append(others, z)
		}
	}
	// CloudFormation appends the EC2 error's service, status and code.
	cause := func(status int, code string) string {
		return fmt.Sprintf(" (Service: AmazonEC2; Status Code: %d; Error Code: %s; Request ID: %08x-0000-4000-8000-00000000ec2f; Proxy: null)", status, code, n)
	}
	switch {
	case !contains(offered, zone):
		return fmt.Sprintf("Your requested instance type (%s) is not supported in your requested Availability Zone (%s). Please retry your request by not specifying an Availability Zone or choosing %s.",
			typ, zone, strings.Join(offered, ", ")) + cause(400, "Unsupported")
	case l.market == "spot" && overQuota(e.quota, "spot", typ, l.live):
		return "Max spot instance count exceeded" + cause(400, "MaxSpotInstanceCountExceeded")
	case l.market != "spot" && overQuota(e.quota, "on-demand", typ, l.live):
		return fmt.Sprintf("You have requested more vCPU capacity than your current vCPU limit of %d allows for the instance bucket that the specified instance type belongs to. Please visit the Service Quotas console to request an adjustment to this limit.",
			e.quota[[2]string{"on-demand", typ}]*vcpus(typ)) + cause(400, "VcpuLimitExceeded")
	case e.noCapacity[zone]:
		return fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity. You can currently get %s capacity by not specifying an Availability Zone in your request or choosing %s.",
			typ, zone, typ, strings.Join(others, ", ")) + cause(500, "InsufficientInstanceCapacity")
	case l.market == "spot" && e.noSpot[[2]string{typ, zone}]:
		return "There is no Spot capacity available that matches your request." + cause(500, "InsufficientInstanceCapacity")
	case l.market == "spot" && l.maxPrice != "" && e.spotPrice[typ] > 0:
		if max, err := strconv.ParseFloat(l.maxPrice, 64); err == nil && max < e.spotPrice[typ] {
			return fmt.Sprintf("Your Spot request price of %s is lower than the minimum required Spot request fulfillment price of %g.",
				l.maxPrice, e.spotPrice[typ]) + cause(400, "SpotMaxPriceTooLow")
		}
	}
	return ""
}

// overQuota: a quota is set for the type in the market and live instances
// use it up.
func overQuota(q map[[2]string]int, market, typ string, live int) bool {
	n, ok := q[[2]string{market, typ}]
	return ok && live >= n
}

// vcpus is the vCPU count of the instance types the fake's quotas speak of
// (EC2 User Guide, "Accelerated computing instances" specifications).
func vcpus(typ string) int {
	switch typ {
	case "dl1.24xlarge", "dl2q.24xlarge", "p4d.24xlarge":
		return 96
	case "trn1.32xlarge":
		return 128
	}
	return 1
}

// Filter names EC2 documents for the two Describe calls served (EC2 API
// Reference, DescribeImages and DescribeInstanceTypeOfferings, "Filters");
// any other name is InvalidParameterValue, as EC2 answers.
var (
	imageFilters = []string{"architecture", "block-device-mapping.delete-on-termination", "block-device-mapping.device-name",
		"block-device-mapping.snapshot-id", "block-device-mapping.volume-size", "block-device-mapping.volume-type",
		"block-device-mapping.encrypted", "creation-date", "description", "ena-support", "free-tier-eligible", "hypervisor",
		"image-allowed", "image-id", "image-type", "is-public", "kernel-id", "manifest-location", "name", "owner-alias",
		"owner-id", "platform", "platform-details", "product-code", "product-code.type", "ramdisk-id", "root-device-name",
		"root-device-type", "source-image-id", "source-image-region", "source-instance-id", "state", "state-reason-code",
		"state-reason-message", "sriov-net-support", "tag-key", "usage-operation", "virtualization-type"}
	offeringFilters = []string{"instance-type", "location"}
)

// filters reads Filter.N.Name / Filter.N.Value.M. It checks each name
// against the documented ones, and that the fake models it (modelled).
func (e *EC2) filters(form url.Values, known, modelled []string) (map[string][]string, string) {
	out := map[string][]string{}
	for i := 1; ; i++ {
		n := form.Get("Filter." + strconv.Itoa(i) + ".Name")
		if n == "" {
			return out, ""
		}
		if !contains(known, n) && !strings.HasPrefix(n, "tag:") {
			return nil, fmt.Sprintf("The filter '%s' is invalid", n)
		}
		if !contains(modelled, n) {
			e.s.violation("EC2 filter %q is valid but the fake does not model it", n)
		}
		out[n] = append(out[n], indexed(form, "Filter."+strconv.Itoa(i)+".Value")...)
	}
}

// Image is an AMI the fake knows.
type Image struct {
	ID, Name, Owner, Created, RootDevice string
}

// AddImage registers an AMI; Owner "amazon" makes it match owner filters.
func (e *EC2) AddImage(im Image) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images = append(e.images, im)
}

// AddSubnet registers a subnet of a VPC.
func (e *EC2) AddSubnet(subnet, vpc string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.subnets == nil {
		e.subnets = map[string]string{}
	}
	e.subnets[subnet] = vpc
}

func indexed(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (e *EC2) serve(w http.ResponseWriter, form url.Values) {
	action := form.Get("Action")
	rid := e.s.requestID()
	if e.s.count("EC2." + action) {
		ec2Error(w, rid, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var body any
	switch action {
	case "DescribeImages":
		type item struct {
			ImageID        string `xml:"imageId"`
			Name           string `xml:"name"`
			State          string `xml:"imageState"`
			Owner          string `xml:"imageOwnerAlias"`
			CreationDate   string `xml:"creationDate"`
			RootDeviceName string `xml:"rootDeviceName"`
		}
		ids, owners := indexed(form, "ImageId"), indexed(form, "Owner")
		f, bad := e.filters(form, imageFilters, []string{"name", "state", "image-id", "owner-alias", "owner-id"})
		if bad != "" {
			ec2Error(w, rid, http.StatusBadRequest, "InvalidParameterValue", bad)
			return
		}
		var items []item
		for _, im := range e.images {
			// Each filter must match (AND); any of a filter's values may (OR).
			if len(ids) > 0 && !contains(ids, im.ID) || len(owners) > 0 && !contains(owners, im.Owner) ||
				!matchAll(f["name"], im.Name) || !matchAll(f["state"], "available") || !matchAll(f["image-id"], im.ID) ||
				!matchAll(f["owner-alias"], im.Owner) || !matchAll(f["owner-id"], im.Owner) {
				continue
			}
			items = append(items, item{im.ID, im.Name, "available", im.Owner, im.Created, im.RootDevice})
		}
		if len(ids) > 0 && len(items) == 0 {
			ec2Error(w, rid, http.StatusBadRequest, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", ids[0]))
			return
		}
		body = struct {
			XMLName   xml.Name `xml:"DescribeImagesResponse"`
			NS        string   `xml:"xmlns,attr"`
			RequestID string   `xml:"requestId"`
			Items     []item   `xml:"imagesSet>item"`
		}{NS: ec2NS, RequestID: rid, Items: items}
	case "DescribeSubnets":
		type item struct {
			SubnetID string `xml:"subnetId"`
			VpcID    string `xml:"vpcId"`
		}
		var items []item
		for _, id := range indexed(form, "SubnetId") {
			vpc, ok := e.subnets[id]
			if !ok {
				ec2Error(w, rid, http.StatusBadRequest, "InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", id))
				return
			}
			items = append(items, item{id, vpc})
		}
		body = struct {
			XMLName   xml.Name `xml:"DescribeSubnetsResponse"`
			NS        string   `xml:"xmlns,attr"`
			RequestID string   `xml:"requestId"`
			Items     []item   `xml:"subnetSet>item"`
		}{NS: ec2NS, RequestID: rid, Items: items}
	case "DescribeInstanceTypeOfferings":
		type item struct {
			InstanceType string `xml:"instanceType"`
			LocationType string `xml:"locationType"`
			Location     string `xml:"location"`
		}
		lt := form.Get("LocationType")
		if lt == "" {
			lt = "region"
		}
		if lt != "region" && lt != "availability-zone" {
			ec2Error(w, rid, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("The location type '%s' is not modelled by the fake", lt))
			e.s.violation("DescribeInstanceTypeOfferings LocationType %q is not modelled", lt)
			return
		}
		f, bad := e.filters(form, offeringFilters, offeringFilters)
		if bad != "" {
			ec2Error(w, rid, http.StatusBadRequest, "InvalidParameterValue", bad)
			return
		}
		var items []item
		types := make([]string, 0, len(e.offers))
		for typ := range e.offers {
			types = append(types, typ)
		}
		sort.Strings(types)
		for _, typ := range types {
			locs := e.offers[typ]
			if lt == "region" {
				if len(locs) == 0 {
					continue
				}
				locs = []string{Region}
			}
			for _, loc := range locs {
				if matchAll(f["instance-type"], typ) && matchAll(f["location"], loc) {
					items = append(items, item{typ, lt, loc})
				}
			}
		}
		body = struct {
			XMLName   xml.Name `xml:"DescribeInstanceTypeOfferingsResponse"`
			NS        string   `xml:"xmlns,attr"`
			RequestID string   `xml:"requestId"`
			Items     []item   `xml:"instanceTypeOfferingSet>item"`
		}{NS: ec2NS, RequestID: rid, Items: items}
	case "DescribeInstances":
		var ok bool
		if body, ok = e.describeInstances(w, rid, form); !ok {
			return
		}
	case "DescribeSpotPriceHistory":
		var ok bool
		if body, ok = e.describeSpotPriceHistory(w, rid, form); !ok {
			return
		}
	default:
		e.s.violation("EC2 action %q is not served", action)
		ec2Error(w, rid, http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if err := xml.NewEncoder(w).Encode(body); err != nil {
		e.s.violation("encode %s: %v", action, err)
	}
}

// matchAll reports whether a value passes one filter: no values means no
// filter; otherwise any value may match, with EC2's * and ? wildcards.
func matchAll(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func ec2Error(w http.ResponseWriter, rid string, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	type xerr struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []xerr   `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}{Errors: []xerr{{code, msg}}, RequestID: rid})
}

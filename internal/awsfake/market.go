package awsfake

// What the fake reads of an instance's purchase option from its template:
// AWS::EC2::Instance takes no market option; a launch template's
// LaunchTemplateData.InstanceMarketOptions does (CloudFormation resource
// schema AWS::EC2::LaunchTemplate), which the instance names in its
// LaunchTemplate property.

// market is the instance resource's market ("on-demand" or "spot") and, for
// spot, the maximum price it asks ("" for EC2's default, the on-demand
// price).
func (st *stack) market(inst tmplResource) (market, maxPrice string) {
	lt, _ := inst.Props["LaunchTemplate"].(map[string]any)
	id, _ := lt["LaunchTemplateId"].(map[string]any)
	ref, _ := id["Ref"].(string)
	for _, r := range st.tmpl.Resources {
		if r.Logical != ref || r.Type != "AWS::EC2::LaunchTemplate" {
			continue
		}
		data, _ := st.resolve(r.Props["LaunchTemplateData"]).(map[string]any)
		mo, _ := st.resolve(data["InstanceMarketOptions"]).(map[string]any)
		if st.eval(mo["MarketType"]) != "spot" {
			return "on-demand", ""
		}
		so, _ := st.resolve(mo["SpotOptions"]).(map[string]any)
		return "spot", st.eval(st.resolve(so["MaxPrice"]))
	}
	return "on-demand", ""
}

// resolve picks the branch of an Fn::If by its condition (AWS::NoValue is
// nil); other values are returned as they are.
func (st *stack) resolve(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if l, ok := m["Fn::If"].([]any); ok && len(l) == 3 {
		if st.cond(scalar(l[0])) {
			return st.resolve(l[1])
		}
		return st.resolve(l[2])
	}
	if m["Ref"] == "AWS::NoValue" {
		return nil
	}
	return v
}

// cond evaluates a named condition with the condition functions
// (CloudFormation User Guide, "Condition functions"): Fn::Equals, Fn::Not,
// Fn::And, Fn::Or and Condition.
func (st *stack) cond(name string) bool {
	return st.condExpr(st.tmpl.Conditions[name])
}

func (st *stack) condExpr(v any) bool {
	m, _ := v.(map[string]any)
	if c, ok := m["Condition"].(string); ok {
		return st.cond(c)
	}
	if l, ok := m["Fn::Equals"].([]any); ok && len(l) == 2 {
		return st.eval(l[0]) == st.eval(l[1])
	}
	if l, ok := m["Fn::Not"].([]any); ok && len(l) == 1 {
		return !st.condExpr(l[0])
	}
	if l, ok := m["Fn::And"].([]any); ok {
		for _, x := range l {
			if !st.condExpr(x) {
				return false
			}
		}
		return len(l) > 0
	}
	if l, ok := m["Fn::Or"].([]any); ok {
		for _, x := range l {
			if st.condExpr(x) {
				return true
			}
		}
	}
	return false
}

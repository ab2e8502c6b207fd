#compdef gpipe
# zsh completion for gpipe. Load it with: source <(gpipe completion zsh),
# or save it as _gpipe in a directory of $fpath.
# The candidates come from `gpipe __complete WORD...` (the words typed so
# far, the last one being completed).
_gpipe() {
  local -a cands dirs others
  local c
  cands=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  for c in "${cands[@]}"; do
    [[ -z $c ]] && continue
    if [[ $c == */ ]]; then dirs+=("$c"); else others+=("$c"); fi
  done
  (( ${#dirs} )) && compadd -Q -S '' -- "${dirs[@]}"
  (( ${#others} )) && compadd -Q -- "${others[@]}"
  return 0
}
if [[ "${funcstack[1]}" == _gpipe ]]; then
  _gpipe "$@"
else
  compdef _gpipe gpipe
fi

# bash completion for gpipe. Load it with: source <(gpipe completion bash)
# The candidates come from `gpipe __complete WORD...` (the words typed so
# far, the last one being completed).
_gpipe() {
  local IFS=$'\n'
  mapfile -t COMPREPLY < <("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  # A directory: no space after it, so the path can go on.
  if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
    compopt -o nospace 2>/dev/null
  fi
}
complete -F _gpipe gpipe

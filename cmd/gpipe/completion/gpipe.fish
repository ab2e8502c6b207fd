# fish completion for gpipe. Load it with: gpipe completion fish | source,
# or save it as ~/.config/fish/completions/gpipe.fish.
# The candidates come from `gpipe __complete WORD...` (the words typed so
# far, the last one being completed).
function __gpipe_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    $tokens[1] __complete $tokens[2..-1] "$cur" 2>/dev/null
end
complete -c gpipe -f -a '(__gpipe_complete)'

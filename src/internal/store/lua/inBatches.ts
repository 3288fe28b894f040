// HSET/HDEL over ARGV[from..] with at most 200 arguments per call: Lua's unpack has a
// stack limit. `initial` (optional) starts the first batch, e.g. {'id', id}.
export const inBatchesLua = `
local function inBatches(command, hash, from, initial)
  local batch = initial or {}
  for i = from, #ARGV do
    batch[#batch + 1] = ARGV[i]
    if #batch >= 200 then
      redis.call(command, hash, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then redis.call(command, hash, unpack(batch)) end
end
`
